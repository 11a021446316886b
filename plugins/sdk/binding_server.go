package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxInFlightPerReadStream bounds how many events of one Read stream may
// await the host's reply at once; further handler calls wait for a slot.
const MaxInFlightPerReadStream = 512

// bindingInstances holds one binding value per x-component-instance.
type bindingInstances[T any] struct {
	kind   string // "input binding" / "output binding", for messages
	logger *slog.Logger
	mu     sync.RWMutex
	m      map[string]T
}

func (b *bindingInstances[T]) get(ctx context.Context) (T, error) {
	name := instanceName(ctx)
	b.mu.RLock()
	v, ok := b.m[name]
	b.mu.RUnlock()
	if !ok {
		var zero T
		return zero, status.Errorf(codes.FailedPrecondition,
			"%s instance %q is not initialised: call Init first (instance named by gRPC metadata %s)",
			b.kind, name, InstanceMetadataKey)
	}
	return v, nil
}

// put stores v for name and closes the value it replaces.
func (b *bindingInstances[T]) put(name string, v T) {
	b.mu.Lock()
	old, had := b.m[name]
	b.m[name] = v
	b.mu.Unlock()
	if c, ok := any(old).(Closer); had && ok {
		if err := c.Close(); err != nil {
			b.logger.Warn("closing replaced instance", "instance", name, "err", err)
		}
	}
}

func (b *bindingInstances[T]) closeAll() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for name, v := range b.m {
		if c, ok := any(v).(Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("instance %q: %w", name, err))
			}
		}
		delete(b.m, name)
	}
	return errors.Join(errs...)
}

// bindingWireError maps a binding error: ErrOperationNotSupported and
// ErrBadRequest → InvalidArgument, everything else as for any component.
func bindingWireError(err error) error {
	if _, ok := status.FromError(err); !ok && (errors.Is(err, ErrOperationNotSupported) || errors.Is(err, ErrBadRequest)) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return wireError(err)
}

func initBinding[T interface {
	Init(context.Context, Metadata) error
}](ctx context.Context, insts *bindingInstances[T], v T, props map[string]string) error {
	name := instanceName(ctx)
	md := Metadata(props)
	if md == nil {
		md = Metadata{}
	}
	if err := v.Init(ctx, md); err != nil {
		if c, ok := any(v).(Closer); ok {
			_ = c.Close()
		}
		insts.logger.Error("init failed", "instance", name, "err", err)
		return bindingWireError(fmt.Errorf("init %q: %w", name, err))
	}
	insts.put(name, v)
	insts.logger.Info("initialised", "instance", name, "kind", insts.kind)
	return nil
}

func pingBinding(ctx context.Context, v any) error {
	if p, ok := v.(Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return bindingWireError(fmt.Errorf("ping: %w", err))
		}
	}
	return nil
}

// outputServer implements the OutputBinding service.
type outputServer struct {
	componentsv1.UnimplementedOutputBindingServer

	newBinding func() OutputBinding
	probe      OutputBinding // never Init'ed; answers ListOperations before Init
	insts      *bindingInstances[OutputBinding]
}

func newOutputServer(newBinding func() OutputBinding, logger *slog.Logger) (*outputServer, error) {
	probe := newBinding()
	if probe == nil {
		return nil, errors.New("output binding factory returned nil")
	}
	return &outputServer{newBinding: newBinding, probe: probe,
		insts: &bindingInstances[OutputBinding]{kind: "output binding", logger: logger, m: map[string]OutputBinding{}}}, nil
}

func (s *outputServer) register(r grpc.ServiceRegistrar) {
	componentsv1.RegisterOutputBindingServer(r, s)
}
func (s *outputServer) closeAll() error { return s.insts.closeAll() }

func (s *outputServer) Init(ctx context.Context, req *componentsv1.OutputBindingInitRequest) (*componentsv1.OutputBindingInitResponse, error) {
	b := s.newBinding()
	if b == nil {
		return nil, status.Error(codes.Internal, "output binding factory returned nil")
	}
	if err := initBinding(ctx, s.insts, b, req.GetMetadata().GetProperties()); err != nil {
		return nil, err
	}
	return &componentsv1.OutputBindingInitResponse{}, nil
}

func (s *outputServer) Ping(ctx context.Context, _ *componentsv1.PingRequest) (*componentsv1.PingResponse, error) {
	b, err := s.insts.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := pingBinding(ctx, b); err != nil {
		return nil, err
	}
	return &componentsv1.PingResponse{}, nil
}

func (s *outputServer) ListOperations(ctx context.Context, _ *componentsv1.ListOperationsRequest) (*componentsv1.ListOperationsResponse, error) {
	b := s.probe
	if inst, err := s.insts.get(ctx); err == nil {
		b = inst
	}
	return &componentsv1.ListOperationsResponse{Operations: slices.Clone(b.Operations())}, nil
}

func (s *outputServer) Invoke(ctx context.Context, req *componentsv1.InvokeRequest) (*componentsv1.InvokeResponse, error) {
	b, err := s.insts.get(ctx)
	if err != nil {
		return nil, err
	}
	op := req.GetOperation()
	ops := b.Operations()
	if op == "" {
		return nil, status.Error(codes.InvalidArgument, "operation field is missing from request")
	}
	if !slices.Contains(ops, op) {
		return nil, status.Errorf(codes.InvalidArgument, "binding does not support operation %s. supported operations: %s", op, strings.Join(ops, " "))
	}
	resp, err := b.Invoke(ctx, &InvokeRequest{Operation: op, Data: req.GetData(), Metadata: req.GetMetadata()})
	if err != nil {
		return nil, bindingWireError(fmt.Errorf("%s: %w", op, err))
	}
	if resp == nil {
		return &componentsv1.InvokeResponse{}, nil
	}
	return &componentsv1.InvokeResponse{Data: resp.Data, Metadata: resp.Metadata, ContentType: resp.ContentType}, nil
}

// inputServer implements the InputBinding service.
type inputServer struct {
	componentsv1.UnimplementedInputBindingServer

	newBinding func() InputBinding
	insts      *bindingInstances[InputBinding]
	logger     *slog.Logger
}

func newInputServer(newBinding func() InputBinding, logger *slog.Logger) (*inputServer, error) {
	probe := newBinding()
	if probe == nil {
		return nil, errors.New("input binding factory returned nil")
	}
	if c, ok := probe.(Closer); ok {
		_ = c.Close()
	}
	return &inputServer{newBinding: newBinding, logger: logger,
		insts: &bindingInstances[InputBinding]{kind: "input binding", logger: logger, m: map[string]InputBinding{}}}, nil
}

func (s *inputServer) register(r grpc.ServiceRegistrar) {
	componentsv1.RegisterInputBindingServer(r, s)
}
func (s *inputServer) closeAll() error { return s.insts.closeAll() }

func (s *inputServer) Init(ctx context.Context, req *componentsv1.InputBindingInitRequest) (*componentsv1.InputBindingInitResponse, error) {
	b := s.newBinding()
	if b == nil {
		return nil, status.Error(codes.Internal, "input binding factory returned nil")
	}
	if err := initBinding(ctx, s.insts, b, req.GetMetadata().GetProperties()); err != nil {
		return nil, err
	}
	return &componentsv1.InputBindingInitResponse{}, nil
}

func (s *inputServer) Ping(ctx context.Context, _ *componentsv1.PingRequest) (*componentsv1.PingResponse, error) {
	b, err := s.insts.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := pingBinding(ctx, b); err != nil {
		return nil, err
	}
	return &componentsv1.PingResponse{}, nil
}

// errReadClosed is what a handler returns (a nack) when the host's stream
// ended before it replied.
var errReadClosed = errors.New("read stream closed before the host replied")

// errAppRejected is wrapped by the handler's error when the host replied
// with response_error.
var errAppRejected = errors.New("event not accepted by the app")

// Read serves one read stream: the binding's Read runs until the stream
// ends; each event is sent as a ReadResponse and its handler call waits for
// the ReadRequest with the same message id.
func (s *inputServer) Read(stream componentsv1.InputBinding_ReadServer) error {
	b, err := s.insts.get(stream.Context())
	if err != nil {
		return err
	}
	log := s.logger.With("instance", instanceName(stream.Context()))
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	rs := &readStream{stream: stream, slots: make(chan struct{}, MaxInFlightPerReadStream),
		pending: map[string]chan readReply{}, done: make(chan struct{}), log: log}

	readDone := make(chan error, 1)
	go func() { readDone <- b.Read(ctx, rs.handle) }()
	recvDone := make(chan error, 1)
	go func() { recvDone <- rs.recvReplies() }()
	log.Debug("read stream opened")

	select {
	case err := <-readDone:
		cancel()
		rs.close()
		if err != nil && ctx.Err() == nil {
			log.Error("read failed", "err", err)
			return bindingWireError(fmt.Errorf("read: %w", err))
		}
		return nil
	case err := <-recvDone:
		cancel()
		rs.close()
		select {
		case rerr := <-readDone:
			if rerr != nil && !errors.Is(rerr, context.Canceled) {
				log.Warn("read ended with an error", "err", rerr)
			}
		case <-time.After(subscribeStopTimeout):
			log.Error("Read did not return after its context ended", "waited", subscribeStopTimeout)
		}
		log.Debug("read stream closed", "err", err)
		if err != nil && status.Code(err) != codes.Canceled {
			return err
		}
		return nil
	}
}

type readReply struct {
	data []byte
	err  error
}

// readStream is the state of one Read stream.
type readStream struct {
	stream componentsv1.InputBinding_ReadServer
	slots  chan struct{}
	log    *slog.Logger
	sendMu sync.Mutex

	mu      sync.Mutex
	pending map[string]chan readReply
	seq     uint64
	done    chan struct{}
	closed  bool
}

func (rs *readStream) close() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !rs.closed {
		rs.closed = true
		close(rs.done)
	}
}

func (rs *readStream) track() (string, chan readReply, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return "", nil, errReadClosed
	}
	rs.seq++
	id := strconv.FormatUint(rs.seq, 10)
	ch := make(chan readReply, 1)
	rs.pending[id] = ch
	return id, ch, nil
}

func (rs *readStream) untrack(id string) {
	rs.mu.Lock()
	delete(rs.pending, id)
	rs.mu.Unlock()
}

// handle is the BindingHandler given to the binding's Read.
func (rs *readStream) handle(ctx context.Context, ev *BindingEvent) ([]byte, error) {
	if ev == nil {
		return nil, errors.New("nil binding event")
	}
	select {
	case rs.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-rs.done:
		return nil, errReadClosed
	}
	defer func() { <-rs.slots }()
	id, reply, err := rs.track()
	if err != nil {
		return nil, err
	}
	defer rs.untrack(id)
	rs.sendMu.Lock()
	err = rs.stream.Send(&componentsv1.ReadResponse{Data: ev.Data, Metadata: ev.Metadata, ContentType: ev.ContentType, MessageId: id})
	rs.sendMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("sending event %s to the host: %w", id, err)
	}
	select {
	case r := <-reply:
		return r.data, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-rs.done:
		return nil, errReadClosed
	}
}

// recvReplies reads the host's replies until the stream ends (nil on EOF).
func (rs *readStream) recvReplies() error {
	for {
		req, err := rs.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		id := req.GetMessageId()
		var r readReply
		if e := req.GetResponseError(); e != nil {
			r.err = fmt.Errorf("%w: %s", errAppRejected, e.GetMessage())
		} else {
			r.data = req.GetResponseData()
		}
		rs.mu.Lock()
		ch, ok := rs.pending[id]
		delete(rs.pending, id)
		rs.mu.Unlock()
		if !ok {
			rs.log.Warn("reply for an unknown or already answered event", "id", id)
			continue
		}
		ch <- r
	}
}
