package sdk

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// unaryMethod is one registered unary handler with its service implementation.
type unaryMethod struct {
	impl    any
	handler grpc.MethodHandler
}

// batchServer serves outrigger.components.v1.UnaryBatch: it runs each call of
// a batch through the same generated handler a plain unary call would reach,
// so a batched call behaves exactly like the call itself. Calls of one
// method on one component instance may instead run as one store operation
// (several state Gets as one BulkGet) when the category server offers a
// merger for the method and the calls qualify.
type batchServer struct {
	ocomponentsv1.UnimplementedUnaryBatchServer
	methods map[string]unaryMethod // "/pkg.Service/Method"
	mergers map[string]merger
}

// merger runs several calls of one method on one component instance as one
// operation. ctx carries the first call's metadata (the instance) and a
// deadline no earlier than any call's. It returns one result per request,
// or ok=false to have each call run on its own (the calls do not qualify,
// or the merged operation failed and per-call errors must be exact).
type merger func(ctx context.Context, reqs [][]byte) (results []*ocomponentsv1.UnaryResult, ok bool)

// merging is implemented by category servers that can merge calls of some
// of their methods; merger returns nil for the others.
type merging interface {
	merger(method string) merger
}

// recorder is a grpc.ServiceRegistrar that forwards every registration to the
// real server and remembers the unary methods (and mergers) for the batch
// server.
type recorder struct {
	next    grpc.ServiceRegistrar
	methods map[string]unaryMethod
	mergers map[string]merger
}

func (r *recorder) RegisterService(desc *grpc.ServiceDesc, impl any) {
	r.next.RegisterService(desc, impl)
	mi, _ := impl.(merging)
	for _, m := range desc.Methods {
		name := "/" + desc.ServiceName + "/" + m.MethodName
		r.methods[name] = unaryMethod{impl: impl, handler: m.Handler}
		if mi != nil {
			if f := mi.merger(name); f != nil {
				r.mergers[name] = f
			}
		}
	}
}

// Call implements UnaryBatchServer.
func (b *batchServer) Call(ctx context.Context, req *ocomponentsv1.UnaryBatchCallRequest) (*ocomponentsv1.UnaryBatchCallResponse, error) {
	calls := req.GetCalls()
	results := make([]*ocomponentsv1.UnaryResult, len(calls))
	var wg sync.WaitGroup
	for _, g := range b.groups(calls) {
		if len(g) > 1 {
			wg.Go(func() { b.runMerged(ctx, calls, g, results) })
			continue
		}
		wg.Go(func() { results[g[0]] = b.run(ctx, calls[g[0]]) })
	}
	wg.Wait()
	return &ocomponentsv1.UnaryBatchCallResponse{Results: results}, nil
}

// groups splits the calls (by index) into groups to merge (same method with
// a merger, same instance) and single calls.
func (b *batchServer) groups(calls []*ocomponentsv1.UnaryCall) [][]int {
	var out [][]int
	at := map[string]int{} // method + instance → index in out
	for i, c := range calls {
		if _, ok := b.mergers[c.GetMethod()]; !ok {
			out = append(out, []int{i})
			continue
		}
		k := c.GetMethod() + "\x00" + instanceOf(c)
		if j, ok := at[k]; ok {
			out[j] = append(out[j], i)
			continue
		}
		at[k] = len(out)
		out = append(out, []int{i})
	}
	return out
}

func instanceOf(c *ocomponentsv1.UnaryCall) string {
	for _, e := range c.GetMetadata() {
		if e.GetKey() == InstanceMetadataKey && len(e.GetValues()) > 0 {
			return e.GetValues()[0]
		}
	}
	return ""
}

// runMerged runs the calls at idx through their method's merger, or one by
// one when the merger declines.
func (b *batchServer) runMerged(ctx context.Context, calls []*ocomponentsv1.UnaryCall, idx []int, results []*ocomponentsv1.UnaryResult) {
	first := calls[idx[0]]
	reqs := make([][]byte, len(idx))
	var latest int64 // µs; 0 = some call has no deadline
	for n, i := range idx {
		reqs[n] = calls[i].GetRequest()
		t := calls[i].GetTimeoutMicros()
		if n == 0 || (latest != 0 && (t == 0 || t > latest)) {
			latest = t
		}
	}
	mctx := incoming(ctx, first)
	if latest > 0 {
		var cancel context.CancelFunc
		mctx, cancel = context.WithTimeout(mctx, time.Duration(latest)*time.Microsecond)
		defer cancel()
	}
	if out, ok := b.merge(mctx, first.GetMethod(), reqs); ok && len(out) == len(idx) {
		for n, i := range idx {
			results[i] = out[n]
		}
		return
	}
	var wg sync.WaitGroup
	for _, i := range idx {
		wg.Go(func() { results[i] = b.run(ctx, calls[i]) })
	}
	wg.Wait()
}

// merge calls the method's merger; a panicking merger declines.
func (b *batchServer) merge(ctx context.Context, method string, reqs [][]byte) (out []*ocomponentsv1.UnaryResult, ok bool) {
	defer func() {
		if recover() != nil {
			out, ok = nil, false
		}
	}()
	return b.mergers[method](ctx, reqs)
}

// incoming is ctx with c's metadata as the incoming metadata.
func incoming(ctx context.Context, c *ocomponentsv1.UnaryCall) context.Context {
	md := make(metadata.MD, len(c.GetMetadata()))
	for _, e := range c.GetMetadata() {
		md[e.GetKey()] = e.GetValues()
	}
	return metadata.NewIncomingContext(ctx, md)
}

// run executes one call and turns its outcome into a result.
func (b *batchServer) run(ctx context.Context, c *ocomponentsv1.UnaryCall) (res *ocomponentsv1.UnaryResult) {
	defer func() {
		// A handler that panics fails its own call, not the batch (gRPC's
		// server would have let the panic crash the plugin; a batch must
		// not make that worse for the other calls).
		if p := recover(); p != nil {
			res = failed(status.New(codes.Internal, fmt.Sprintf("panic in %s: %v", c.GetMethod(), p)))
		}
	}()
	m, ok := b.methods[c.GetMethod()]
	if !ok {
		return failed(status.Newf(codes.Unimplemented, "unknown method %s", c.GetMethod()))
	}
	cctx := incoming(ctx, c)
	if t := c.GetTimeoutMicros(); t > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(cctx, time.Duration(t)*time.Microsecond)
		defer cancel()
	}
	dec := func(v any) error {
		msg, ok := v.(proto.Message)
		if !ok {
			return status.Errorf(codes.Internal, "%s: request type %T is not a protobuf message", c.GetMethod(), v)
		}
		if err := proto.Unmarshal(c.GetRequest(), msg); err != nil {
			return status.Errorf(codes.InvalidArgument, "%s: decoding the request: %v", c.GetMethod(), err)
		}
		return nil
	}
	out, err := m.handler(m.impl, cctx, dec, nil)
	if err != nil {
		return failed(status.Convert(err))
	}
	msg, ok := out.(proto.Message)
	if !ok {
		return failed(status.Newf(codes.Internal, "%s: response type %T is not a protobuf message", c.GetMethod(), out))
	}
	raw, err := proto.Marshal(msg)
	if err != nil {
		return failed(status.Newf(codes.Internal, "%s: encoding the response: %v", c.GetMethod(), err))
	}
	return &ocomponentsv1.UnaryResult{Response: raw}
}

// succeeded is the result of a call that answered msg.
func succeeded(msg proto.Message) *ocomponentsv1.UnaryResult {
	raw, err := proto.Marshal(msg)
	if err != nil {
		return failed(status.Newf(codes.Internal, "encoding the response: %v", err))
	}
	return &ocomponentsv1.UnaryResult{Response: raw}
}

func failed(st *status.Status) *ocomponentsv1.UnaryResult {
	p := st.Proto()
	return &ocomponentsv1.UnaryResult{Code: p.GetCode(), Message: p.GetMessage(), Details: p.GetDetails()}
}

// errResult is the result of a call that failed with err, mapped as the
// handlers map errors (wireError).
func errResult(err error) *ocomponentsv1.UnaryResult {
	return failed(status.Convert(wireError(err)))
}

// bulkOf is an instance's bulk capability T (as returned with err by an
// instance lookup), if it has one.
func bulkOf[T, S any](inst S, err error) (T, bool) {
	var zero T
	if err != nil {
		return zero, false
	}
	t, ok := any(inst).(T)
	return t, ok
}

// mergeAll is the shape of every merger: decode each request (declining
// unless all decode and qualify), run them as one bulk call (declining when
// it fails or answers another count, so each call then runs alone and gets
// its own exact error), and turn each answer into its call's result
// (declining when result says the answers do not match the requests).
func mergeAll[Req, Res any](raws [][]byte, decode func([]byte) (Req, bool), bulk func([]Req) ([]Res, error),
	result func(Req, Res) (*ocomponentsv1.UnaryResult, bool)) ([]*ocomponentsv1.UnaryResult, bool) {
	reqs := make([]Req, len(raws))
	for i, raw := range raws {
		req, ok := decode(raw)
		if !ok {
			return nil, false
		}
		reqs[i] = req
	}
	res, err := bulk(reqs)
	if err != nil || len(res) != len(reqs) {
		return nil, false
	}
	out := make([]*ocomponentsv1.UnaryResult, len(res))
	for i := range res {
		r, ok := result(reqs[i], res[i])
		if !ok {
			return nil, false
		}
		out[i] = r
	}
	return out, true
}

// decodeAs unmarshals raw into a new M and converts it with conv, which
// also says whether the request may be merged.
func decodeAs[M any, PM interface {
	*M
	proto.Message
}, Req any](conv func(PM) (Req, bool)) func([]byte) (Req, bool) {
	return func(raw []byte) (Req, bool) {
		m := PM(new(M))
		if proto.Unmarshal(raw, m) != nil {
			var zero Req
			return zero, false
		}
		return conv(m)
	}
}
