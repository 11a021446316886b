package invoke

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	sidecarv1 "github.com/outrigger/outrigger/proto/gen/outrigger/sidecar/v1"
	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/telemetry"
	"github.com/outrigger/outrigger/resiliency"
)

const (
	frameSize = 32 << 10 // body bytes per frame
)

// Picker chooses an instance (its internal gRPC address) of an app id. done is
// called when the call to that instance ends, with its transport error if any.
type Picker interface {
	Pick(ctx context.Context, appID string) (addr string, done func(error), err error)
}

// ErrNoInstances is what a Picker returns (wrapped) when nothing serves an app id.
var ErrNoInstances = errors.New("no instances")

// Config configures a Service.
type Config struct {
	AppID  string
	Local  appchannel.Channel // nil when the sidecar has no app
	Picker Picker
	Logger *slog.Logger
	// ProxyApp is the gRPC app connection for gRPC proxy mode (nil unless --app-protocol grpc).
	ProxyApp *appchannel.GRPCChannel
	// Resiliency returns the current policies (swapped on reload); nil means
	// none: one attempt per call.
	Resiliency func() *resiliency.Provider
	// Tracing and Metrics may be nil (off).
	Tracing *telemetry.Tracing
	Metrics *telemetry.Metrics
}

// Service is both sides of service invocation.
type Service struct {
	sidecarv1.UnimplementedInvokeServiceServer
	cfg   Config
	log   *slog.Logger
	mu    sync.RWMutex
	conns map[string]*grpc.ClientConn
	bufs  sync.Pool
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{cfg: cfg, log: cfg.Logger, conns: map[string]*grpc.ClientConn{}}
	s.bufs.New = func() any { b := make([]byte, frameSize); return &b }
	return s
}

// AppID is the sidecar's own app id.
func (s *Service) AppID() string { return s.cfg.AppID }

// HasApp reports whether the sidecar has an app channel.
func (s *Service) HasApp() bool { return s.cfg.Local != nil }

// Close closes connections to other sidecars.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, c := range s.conns {
		_ = c.Close()
		delete(s.conns, a)
	}
	return nil
}

func (s *Service) conn(addr string) (*grpc.ClientConn, error) {
	s.mu.RLock()
	c := s.conns[addr]
	s.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c = s.conns[addr]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
		grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(4<<20),
		grpc.WithReadBufferSize(64<<10), grpc.WithWriteBufferSize(64<<10),
	)
	if err != nil {
		return nil, fmt.Errorf("dial sidecar %s: %w", addr, err)
	}
	s.conns[addr] = c
	return c, nil
}

// Invoke forwards req to an instance of target (or the local app) and returns
// its answer. Errors are *errs.Error values of the ERR_DIRECT_INVOKE family.
func (s *Service) Invoke(ctx context.Context, target string, req *appchannel.Request, caller Caller) (*appchannel.Response, error) {
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if target == s.cfg.AppID || target == "" {
		if s.cfg.Local == nil {
			return nil, errs.AppChannelNil.New()
		}
		h := make(http.Header, len(req.Header)+4)
		for k, vs := range req.Header {
			if !skipHeader(k) {
				h[k] = vs
			}
		}
		req.Header = h
		s.addForwardHeaders(req.Header, s.cfg.AppID, caller)
		resp, err := s.cfg.Local.Invoke(ctx, req)
		if err != nil {
			return nil, errs.DirectInvoke.New(target, err)
		}
		return resp, nil
	}

	head := &sidecarv1.RequestHead{
		TargetAppId:   target,
		CallerAppId:   s.cfg.AppID,
		Method:        req.Method,
		Verb:          req.Verb,
		Query:         req.Query,
		Headers:       toWire(req.Header),
		ContentLength: req.ContentLength,
		RemoteAddr:    caller.RemoteAddr,
		Host:          caller.Host,
	}
	// The target's resiliency policy (timeout → retry → breaker); without one,
	// Dapr's built-in service retries (3 × 1 s on Unavailable).
	policy := s.policies().App(target)
	// A body of known size that fits in one frame is buffered: one message,
	// and replayable. With a retry policy, bodies up to maxReplay are buffered
	// too, so a retry resends them whole; larger ones stream and are not retried.
	var small []byte
	buffered := req.Body == nil || req.ContentLength == 0
	limit := int64(frameSize)
	if policy.HasRetries() {
		limit = maxReplay
	}
	if !buffered && req.ContentLength > 0 && req.ContentLength <= limit {
		b := make([]byte, req.ContentLength)
		if _, err := io.ReadFull(req.Body, b); err != nil {
			return nil, errs.BodyRead.New(err.Error())
		}
		small, buffered = b, true
	}

	start := time.Now()
	s.cfg.Metrics.RecordInvocationRequestSent(target, !buffered)
	var last *appchannel.Response // the latest answer, kept if it is the final one
	err := policy.Execute(ctx, func(ctx context.Context) error {
		if last != nil {
			_ = last.Body.Close() // a retry replaces the previous answer
			last = nil
		}
		resp, err := s.callInstance(ctx, target, head, small, buffered, req.Body)
		if err != nil {
			return err
		}
		last = resp
		if resp.Status >= 500 {
			return appStatus{resp.Status} // counts for retries and breakers; relayed if final
		}
		return nil
	}, resiliency.Replayable(buffered))
	if last != nil && (err == nil || errors.As(err, new(appStatus))) {
		s.cfg.Metrics.RecordInvocationResponseReceived(target, last.Status, !buffered, time.Since(start))
		return last, nil // success, or the app's own answer once retries are spent
	}
	if last != nil {
		_ = last.Body.Close()
	}
	return nil, errs.DirectInvoke.New(target, statusMessage(err))
}

// maxReplay bounds the request body buffered so a retry can resend it.
const maxReplay = 4 << 20

// appStatus is an app's 5xx answer seen as an error by resiliency policies.
type appStatus struct{ code int }

func (a appStatus) Error() string   { return "app answered " + strconv.Itoa(a.code) }
func (a appStatus) HTTPStatus() int { return a.code }

// callInstance picks an instance of target, skipping ejected ones, and calls
// it. A hop that fails before any request body was consumed moves straight
// to another instance once, whatever the policy, since nothing was sent.
func (s *Service) callInstance(ctx context.Context, target string, head *sidecarv1.RequestHead, small []byte, buffered bool, body io.Reader) (*appchannel.Response, error) {
	var lastErr error
	for try := 0; try < 2; try++ {
		addr, done, err := s.cfg.Picker.Pick(ctx, target)
		if err != nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, resiliency.Permanent(err) // nothing to call: fail fast
		}
		resp, sent, err := s.callRemote(ctx, addr, head, small, buffered, body)
		done(err)
		s.ejector().Report(target, addr, err == nil && resp.Status < 500)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if status.Code(err) != codes.Unavailable || sent || ctx.Err() != nil {
			break
		}
		s.log.Debug("instance unreachable, trying another", "app", target, "instance", addr, "err", err)
	}
	return nil, lastErr
}

func (s *Service) policies() *resiliency.Provider {
	if s.cfg.Resiliency == nil {
		return nil
	}
	return s.cfg.Resiliency()
}

func (s *Service) ejector() *resiliency.Ejector { return s.policies().Ejector() }

func statusMessage(err error) error {
	if st, ok := status.FromError(err); ok {
		return errors.New(st.Message())
	}
	return err
}

// callRemote runs one Call stream. sent reports whether any request body was consumed.
func (s *Service) callRemote(ctx context.Context, addr string, head *sidecarv1.RequestHead, small []byte, buffered bool, body io.Reader) (*appchannel.Response, bool, error) {
	conn, err := s.conn(addr)
	if err != nil {
		return nil, false, status.Error(codes.Unavailable, err.Error())
	}
	cctx, cancel := context.WithCancel(ctx)
	stream, err := sidecarv1.NewInvokeServiceClient(conn).Call(cctx)
	if err != nil {
		cancel()
		return nil, false, err
	}
	sent := false
	if buffered {
		if err := stream.Send(&sidecarv1.CallRequest{Head: head, Chunk: small, End: true}); err != nil && err != io.EOF {
			cancel()
			return nil, false, err
		}
		_ = stream.CloseSend()
	} else {
		sent = true
		if err := stream.Send(&sidecarv1.CallRequest{Head: head}); err != nil && err != io.EOF {
			cancel()
			return nil, false, err
		}
		go s.pumpRequest(stream, body, cancel)
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		return nil, sent, err
	}
	rh := first.GetHead()
	if rh == nil {
		cancel()
		return nil, sent, status.Error(codes.Internal, "callee sidecar sent no response head")
	}
	resp := &appchannel.Response{
		Status:      int(rh.Status),
		Header:      fromWire(rh.Headers, 0),
		GRPCCode:    codes.Code(rh.GrpcCode),
		GRPCMessage: rh.GrpcMessage,
	}
	resp.Body = &frameReader{stream: stream, cur: first.Chunk, end: first.End, cancel: cancel}
	return resp, sent, nil
}

func (s *Service) pumpRequest(stream sidecarv1.InvokeService_CallClient, body io.Reader, cancel context.CancelFunc) {
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	for {
		// One Read per frame: whatever has arrived is forwarded at once, so a
		// body the client streams slowly is not held back to fill a frame.
		n, err := body.Read(buf)
		if n > 0 {
			if serr := stream.Send(&sidecarv1.CallRequest{Chunk: buf[:n]}); serr != nil {
				return // the receive side sees the stream's error
			}
		}
		if err == io.EOF {
			_ = stream.Send(&sidecarv1.CallRequest{End: true})
			_ = stream.CloseSend()
			return
		}
		if err != nil {
			// The caller's body broke (client went away): abandon the call.
			cancel()
			return
		}
	}
}

// frameReader reads a response body from CallResponse frames.
type frameReader struct {
	stream sidecarv1.InvokeService_CallClient
	cur    []byte
	end    bool
	err    error
	cancel context.CancelFunc
}

func (r *frameReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.end {
			r.err = io.EOF
			r.cancel()
			return 0, io.EOF
		}
		f, err := r.stream.Recv()
		if err != nil {
			if err == io.EOF {
				r.err = io.ErrUnexpectedEOF
			} else {
				r.err = fmt.Errorf("invoke: response stream: %w", err)
			}
			r.cancel()
			return 0, r.err
		}
		r.cur, r.end = f.Chunk, f.End
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// WriteTo writes frames straight to w without an intermediate copy.
func (r *frameReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.cur) > 0 {
			n, err := w.Write(r.cur)
			total += int64(n)
			r.cur = r.cur[n:]
			if err != nil {
				r.cancel()
				return total, err
			}
			if !r.end {
				// More is coming, maybe later: let the client have this part now.
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
			}
		}
		if r.err != nil {
			return total, r.err
		}
		if r.end {
			r.err = io.EOF
			r.cancel()
			return total, nil
		}
		f, err := r.stream.Recv()
		if err != nil {
			r.err = fmt.Errorf("invoke: response stream: %w", err)
			r.cancel()
			return total, r.err
		}
		r.cur, r.end = f.Chunk, f.End
	}
}

func (r *frameReader) Close() error {
	r.cancel()
	return nil
}

// Caller describes the original caller, for the callee's forwarding headers.
type Caller struct {
	RemoteAddr string // ip:port of the client that called the caller sidecar
	Host       string // Host header it used
}

// addForwardHeaders adds what Dapr's callee sidecar adds to an invocation.
func (s *Service) addForwardHeaders(h http.Header, callerAppID string, c Caller) {
	h.Set("dapr-caller-app-id", callerAppID)
	h.Set("dapr-callee-app-id", s.cfg.AppID)
	ip := c.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	if ip != "" {
		if prior := h.Get("X-Forwarded-For"); prior != "" {
			h.Set("X-Forwarded-For", prior+", "+ip)
		} else {
			h.Set("X-Forwarded-For", ip)
		}
	}
	if c.Host != "" {
		h.Set("X-Forwarded-Host", c.Host)
		fwd := "by=" + s.cfg.AppID + ";for=" + ip + ";host=" + c.Host
		h.Set("Forwarded", fwd)
	}
}

// Call is the callee side: deliver one forwarded invocation to the local app.
func (s *Service) Call(stream sidecarv1.InvokeService_CallServer) error {
	var appStatus int
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	head := first.GetHead()
	if head == nil {
		return status.Error(codes.InvalidArgument, "first frame carries no request head")
	}
	if s.cfg.Local == nil {
		return status.Errorf(codes.FailedPrecondition, "app %s has no app channel (no --app-port)", s.cfg.AppID)
	}
	if head.TargetAppId != "" && head.TargetAppId != s.cfg.AppID {
		return status.Errorf(codes.NotFound, "this sidecar serves app %s, not %s", s.cfg.AppID, head.TargetAppId)
	}
	h := fromWire(head.Headers, 4)
	if head.Host != "" {
		h.Set("Host", head.Host)
	}
	s.addForwardHeaders(h, head.CallerAppId, Caller{RemoteAddr: head.RemoteAddr, Host: head.Host})
	ctx := stream.Context()
	if s.cfg.Tracing.Enabled() {
		var span trace.Span
		// The callee's span; StartFromHeader rewrites h so the app sees it as parent.
		ctx, span = s.cfg.Tracing.StartFromHeader(ctx, h, "CallLocal/"+s.cfg.AppID+"/"+head.Method, trace.SpanKindServer)
		defer span.End()
		defer func() { telemetry.SetHTTPStatus(span, appStatus) }()
	}
	s.cfg.Metrics.RecordInvocationRequestReceived(head.CallerAppId)
	req := &appchannel.Request{Method: head.Method, Verb: head.Verb, Query: head.Query, Header: h, ContentLength: head.ContentLength}
	if first.End {
		if len(first.Chunk) > 0 {
			req.Body = strings.NewReader(string(first.Chunk))
			req.ContentLength = int64(len(first.Chunk))
		} else {
			req.ContentLength = 0
		}
	} else {
		req.Body = &requestFrames{stream: stream, cur: first.Chunk}
	}
	resp, err := s.cfg.Local.Invoke(ctx, req)
	if err != nil {
		appStatus = http.StatusInternalServerError
		return status.Errorf(codes.FailedPrecondition, "app %s is unreachable: %v", s.cfg.AppID, err)
	}
	defer resp.Body.Close()
	appStatus = resp.Status
	s.cfg.Metrics.RecordInvocationResponseSent(head.CallerAppId, resp.Status)

	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	out := &sidecarv1.CallResponse{Head: &sidecarv1.ResponseHead{
		Status: int32(resp.Status), Headers: toWireResponse(resp.Header),
		GrpcCode: int32(resp.GRPCCode), GrpcMessage: resp.GRPCMessage,
	}}
	// Frames go out as the app's bytes arrive (a flushed event is forwarded at
	// once). A body of known length ends in the frame that completes it, so a
	// small answer is one message.
	remaining := int64(-1)
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil {
			remaining = v
		}
	}
	for {
		var n int
		var rerr error
		if remaining != 0 {
			n, rerr = resp.Body.Read(buf)
		} else {
			rerr = io.EOF
		}
		if remaining > 0 {
			remaining -= int64(n)
			if remaining <= 0 && rerr == nil {
				rerr = io.EOF
			}
		}
		out.Chunk = buf[:n]
		out.End = rerr == io.EOF
		if rerr != nil && !out.End {
			return status.Errorf(codes.Internal, "reading the app's response: %v", rerr)
		}
		if n == 0 && !out.End && out.Head == nil {
			continue
		}
		if err := stream.Send(out); err != nil {
			return err
		}
		if out.End {
			return nil
		}
		out = &sidecarv1.CallResponse{}
	}
}

// toWireResponse keeps Content-Length (the body is relayed unchanged).
func toWireResponse(h http.Header) []*sidecarv1.Header {
	out := make([]*sidecarv1.Header, 0, len(h))
	for k, vs := range h {
		if skipHeader(k) && !strings.EqualFold(k, "Content-Length") {
			continue
		}
		out = append(out, &sidecarv1.Header{Key: k, Values: vs})
	}
	return out
}

// requestFrames reads a request body from CallRequest frames.
type requestFrames struct {
	stream sidecarv1.InvokeService_CallServer
	cur    []byte
	done   bool
}

func (r *requestFrames) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.done {
			return 0, io.EOF
		}
		f, err := r.stream.Recv()
		if err == io.EOF {
			r.done = true
			return 0, io.EOF
		}
		if err != nil {
			return 0, fmt.Errorf("invoke: request stream: %w", err)
		}
		r.cur, r.done = f.Chunk, f.End
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
