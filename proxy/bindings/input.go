package bindings

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/outrigger/outrigger/proxy/appchannel"
)

// Reconnect backoff for a broken Read stream.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// errStopping answers events that arrive while the sidecar stops: a nack, so
// the plugin redelivers them later when its kind allows.
var errStopping = errors.New("sidecar is shutting down")

// Start asks the app which input bindings it wants and starts reading each:
// an HTTP app is probed with OPTIONS /<route> (2xx or 405 = wanted) unless
// the component's direction metadata names input; a gRPC app lists them with
// ListInputBindings. Call it once the app is ready. Problems with single
// bindings are logged, not returned.
func (a *API) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("bindings: already started")
	}
	if a.stopping {
		a.mu.Unlock()
		return errors.New("bindings: stopped")
	}
	a.started = true
	a.mu.Unlock()
	if a.app == nil || a.bindings == nil {
		return nil
	}
	var d deliverer = httpDeliverer{ch: a.app}
	var grpcWanted []string
	g, isGRPC := a.app.(grpcApp)
	if isGRPC {
		d = grpcDeliverer{g: g}
	}
	listed := false
	var readers []*reader
	for _, name := range a.bindings.Names() {
		b, ok := a.lookup(name)
		if !ok || !b.Input {
			continue
		}
		in, _, set := directions(b.Properties)
		if set && !in {
			continue // declared output only
		}
		wanted := set && in
		if !wanted {
			var err error
			if isGRPC {
				if !listed {
					grpcWanted, err = listInputBindings(ctx, g)
					listed = true
				}
				wanted = slices.Contains(grpcWanted, name)
			} else {
				wanted, err = a.probe(ctx, route(b))
			}
			if err != nil {
				a.log.Error("input binding not started: the app could not be asked", "binding", name, "err", err)
				continue
			}
		}
		if !wanted {
			a.log.Info("app has not subscribed to binding", "binding", name)
			continue
		}
		r := a.newReader(b, d)
		readers = append(readers, r)
		a.log.Info("reading input binding", "binding", name, "route", route(b))
	}
	a.mu.Lock()
	stopped := a.stopping
	if !stopped {
		a.readers = readers
		for _, r := range readers {
			go r.run()
		}
	}
	a.mu.Unlock()
	return nil
}

// Stop stops every input binding: events that arrive now are nacked,
// in-flight deliveries finish (until ctx ends, then they are cancelled) and
// send their replies, then the Read streams close.
func (a *API) Stop(ctx context.Context) error {
	a.mu.Lock()
	a.stopping = true
	readers := a.readers
	a.readers = nil
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() { defer wg.Done(); r.stop(ctx) }()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bindings: stop: %w", ctx.Err())
	}
}

// probe asks an HTTP app whether it serves route: OPTIONS /<route>.
func (a *API) probe(ctx context.Context, route string) (bool, error) {
	resp, err := a.app.Invoke(ctx, &appchannel.Request{Method: route, Verb: http.MethodOptions,
		Header: http.Header{"Content-Type": {"application/json"}}})
	if err != nil {
		return false, fmt.Errorf("could not invoke OPTIONS method on input binding subscription endpoint %q: %w", route, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.Status/100 == 2 || resp.Status == http.StatusMethodNotAllowed, nil
}

func listInputBindings(ctx context.Context, g grpcApp) ([]string, error) {
	cctx := outgoing(g, ctx, metadata.MD{})
	resp, err := runtimev1.NewAppCallbackClient(g.Conn()).ListInputBindings(cctx, &emptypb.Empty{})
	if status.Code(err) == codes.Unimplemented {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ListInputBindings: %w", err)
	}
	return resp.GetBindings(), nil
}

func outgoing(g grpcApp, ctx context.Context, md metadata.MD) context.Context {
	if t, ok := g.(appTokener); ok {
		return t.OutgoingContext(ctx, md)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// reader reads one input binding: it keeps a Read stream open (reopening a
// broken one with backoff) and delivers each event on its own goroutine.
type reader struct {
	a *API
	b Binding
	d deliverer

	ctx    context.Context // ends the streams (Stop, after draining)
	cancel context.CancelFunc
	// deliverCtx bounds deliveries; cancelled when Stop's ctx ends.
	deliverCtx    context.Context
	cancelDeliver context.CancelFunc
	stopping      chan struct{}
	stopOnce      sync.Once
	slots         chan struct{}
	inflight      sync.WaitGroup
	done          chan struct{}

	mu        sync.Mutex
	closeSend func() // half-closes the current stream; nil between streams
}

func (a *API) newReader(b Binding, d deliverer) *reader {
	ctx, cancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithCancel(context.Background())
	return &reader{a: a, b: b, d: d, ctx: ctx, cancel: cancel, deliverCtx: dctx, cancelDeliver: dcancel,
		stopping: make(chan struct{}), slots: make(chan struct{}, a.maxConc), done: make(chan struct{})}
}

func (r *reader) isStopping() bool {
	select {
	case <-r.stopping:
		return true
	default:
		return false
	}
}

func (r *reader) stop(ctx context.Context) {
	r.stopOnce.Do(func() { close(r.stopping) })
	drained := make(chan struct{})
	go func() { r.inflight.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		r.cancelDeliver()
		<-drained
	}
	// Half-close so the replies already sent reach the plugin before the
	// stream ends; the plugin then ends the stream itself.
	r.mu.Lock()
	if r.closeSend != nil {
		r.closeSend()
	}
	r.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	r.cancel()
	<-r.done
	r.cancelDeliver()
}

func (r *reader) run() {
	defer close(r.done)
	log := r.a.log.With("binding", r.b.Name)
	backoff := minBackoff
	for !r.isStopping() {
		opened := time.Now()
		err := r.readOnce()
		if r.isStopping() || r.ctx.Err() != nil {
			return
		}
		if time.Since(opened) > 10*time.Second {
			backoff = minBackoff
		}
		log.Warn("input binding stream ended; reopening", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-r.stopping:
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// readOnce opens one Read stream and serves it until it breaks.
func (r *reader) readOnce() error {
	sctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	st, err := componentsv1.NewInputBindingClient(r.b.Conn).Read(sctx)
	if err != nil {
		return fmt.Errorf("opening the read stream: %s", pluginMessage(err))
	}
	var sendMu sync.Mutex
	reply := func(req *componentsv1.ReadRequest) {
		sendMu.Lock()
		defer sendMu.Unlock()
		if err := st.Send(req); err != nil {
			r.a.log.Debug("reply to input binding not sent", "binding", r.b.Name, "id", req.GetMessageId(), "err", err)
		}
	}
	halfClose := func() {
		sendMu.Lock()
		_ = st.CloseSend()
		sendMu.Unlock()
	}
	r.mu.Lock()
	r.closeSend = halfClose
	r.mu.Unlock()
	// Replies of this stream's deliveries are sent before it closes.
	var streamWG sync.WaitGroup
	defer func() {
		r.mu.Lock()
		r.closeSend = nil
		r.mu.Unlock()
		streamWG.Wait()
		halfClose()
	}()
	for {
		ev, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("the plugin ended the read stream")
			}
			return errors.New(pluginMessage(err))
		}
		if r.isStopping() {
			reply(&componentsv1.ReadRequest{MessageId: ev.GetMessageId(), ResponseError: &componentsv1.AckResponseError{Message: errStopping.Error()}})
			continue
		}
		select {
		case r.slots <- struct{}{}:
		case <-r.stopping:
			reply(&componentsv1.ReadRequest{MessageId: ev.GetMessageId(), ResponseError: &componentsv1.AckResponseError{Message: errStopping.Error()}})
			continue
		}
		r.inflight.Add(1)
		streamWG.Add(1)
		go func() {
			defer func() { <-r.slots; r.inflight.Done(); streamWG.Done() }()
			data, err := r.deliver(ev)
			req := &componentsv1.ReadRequest{MessageId: ev.GetMessageId(), ResponseData: data}
			if err != nil {
				req.ResponseData = nil
				req.ResponseError = &componentsv1.AckResponseError{Message: err.Error()}
			}
			reply(req)
		}()
	}
}

// deliver hands one event to the app and acts on its answer.
func (r *reader) deliver(ev *componentsv1.ReadResponse) ([]byte, error) {
	ctx := r.deliverCtx
	ans, err := r.d.deliver(ctx, r.b.Name, route(r.b), ev)
	if err != nil {
		r.a.log.Debug("input binding event not accepted by the app", "binding", r.b.Name, "err", err)
		return nil, err
	}
	if ans.act != nil {
		r.a.onAppAnswer(ctx, r.b.Name, ans.act)
	}
	return ans.body, nil
}
