package host

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// batchService is the optional service through which a plugin takes several
// unary calls in one round trip (proto/outrigger/components/v1/batch.proto).
const batchService = "outrigger.components.v1.UnaryBatch"

const (
	// batchInflight is how many calls or batches one plugin connection has
	// in flight before further calls queue. Below it every call goes out at
	// once as a plain unary call: batching never delays a call on an idle
	// or lightly loaded connection.
	batchInflight = 2
	// batchMax caps the calls in one batch.
	batchMax = 128
	// batchMaxBytes caps a batch's serialized requests, well under gRPC's
	// default 4 MiB receive limit of a plugin's server. A call whose request
	// alone is larger than this never waits for a batch: it goes out as a
	// plain call at once, as it would to a plugin without batching.
	batchMaxBytes = 1 << 20
)

// batcher coalesces unary calls to one plugin connection under load: while
// batchInflight calls or batches are outstanding, new calls wait in a queue,
// and each time one completes the whole queue leaves as one UnaryBatch call.
// No timer: a call waits only for a round trip already under way.
type batcher struct {
	conn  *grpc.ClientConn
	stats *batchStats

	mu       sync.Mutex
	inflight int
	queue    []*queued
}

// queued is a call waiting for the next batch.
type queued struct {
	ctx  context.Context
	call *ocomponentsv1.UnaryCall
	done chan outcome // buffered: the batch never blocks on an abandoned call
}

// outcome is a queued call's result, or the error of its whole batch.
type outcome struct {
	res *ocomponentsv1.UnaryResult
	err error
}

// batchStats count a plugin's batches across its restarts.
type batchStats struct {
	batches atomic.Int64 // UnaryBatch calls made
	calls   atomic.Int64 // calls carried in them
}

func newBatcher(conn *grpc.ClientConn, stats *batchStats) *batcher {
	return &batcher{conn: conn, stats: stats}
}

// invoke makes one unary call on b.conn (ctx already carries the call's
// outgoing metadata): at once as a plain call when a slot is free (or the
// call cannot travel in a batch), else in the next batch.
func (b *batcher) invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if !batchable(opts) {
		return b.conn.Invoke(ctx, method, args, reply, opts...)
	}
	if b.acquire() {
		return b.direct(ctx, method, args, reply, opts)
	}
	q, err := newQueued(ctx, method, args)
	if err != nil {
		return err
	}
	if len(q.call.GetRequest()) > batchMaxBytes {
		return b.conn.Invoke(ctx, method, args, reply, opts...) // too big to batch
	}
	if !b.enqueue(q) { // a slot freed meanwhile
		return b.direct(ctx, method, args, reply, opts)
	}
	select {
	case o := <-q.done:
		if o.err != nil {
			return o.err
		}
		return decodeResult(method, o.res, reply)
	case <-ctx.Done():
		return grpcstatus.FromContextError(ctx.Err()).Err()
	}
}

// acquire takes an in-flight slot if one is free.
func (b *batcher) acquire() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inflight < batchInflight {
		b.inflight++
		return true
	}
	return false
}

// enqueue queues q for the next batch, unless a slot is free: then it takes
// the slot instead and reports false.
func (b *batcher) enqueue(q *queued) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inflight < batchInflight {
		b.inflight++
		return false
	}
	b.queue = append(b.queue, q)
	return true
}

// direct makes a plain call in the slot the caller holds, then releases it.
func (b *batcher) direct(ctx context.Context, method string, args, reply any, opts []grpc.CallOption) error {
	err := b.conn.Invoke(ctx, method, args, reply, opts...)
	b.release()
	return err
}

// batchable reports whether a call with opts can travel in a batch: only
// grpc.StaticMethod (which newer generated clients always pass) may be set;
// other options (headers, trailers, size limits) need a call of their own.
func batchable(opts []grpc.CallOption) bool {
	for _, o := range opts {
		if _, ok := o.(grpc.StaticMethodCallOption); !ok {
			return false
		}
	}
	return true
}

func newQueued(ctx context.Context, method string, args any) (*queued, error) {
	msg, ok := args.(proto.Message)
	if !ok {
		return nil, grpcstatus.Errorf(codes.Internal, "%s: request type %T is not a protobuf message", method, args)
	}
	raw, err := proto.Marshal(msg)
	if err != nil {
		return nil, grpcstatus.Errorf(codes.Internal, "%s: encoding the request: %v", method, err)
	}
	call := &ocomponentsv1.UnaryCall{Method: method, Request: raw}
	md, _ := metadata.FromOutgoingContext(ctx)
	for k, v := range md {
		call.Metadata = append(call.Metadata, &ocomponentsv1.MetadataEntry{Key: k, Values: v})
	}
	if dl, ok := ctx.Deadline(); ok {
		call.TimeoutMicros = max(time.Until(dl).Microseconds(), 1)
	}
	return &queued{ctx: ctx, call: call, done: make(chan outcome, 1)}, nil
}

// release ends one in-flight call or batch. If calls are queued, the slot
// passes to a batch of them instead of being freed.
func (b *batcher) release() {
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.inflight--
		b.mu.Unlock()
		return
	}
	n, size := 0, 0
	for n < len(b.queue) && n < batchMax {
		size += len(b.queue[n].call.GetRequest())
		if n > 0 && size > batchMaxBytes {
			break
		}
		n++
	}
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	b.mu.Unlock()
	go b.send(batch)
}

// send makes one UnaryBatch call for batch and hands each call its result,
// then releases the slot (which may start the next batch). The batch is
// cancelled once every caller in it has gone (each call's own deadline
// travels with it and the plugin applies it to that call alone), so a
// plugin that hangs holds a slot no longer than a plain call would hold
// its caller.
func (b *batcher) send(batch []*queued) {
	defer b.release()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := &ocomponentsv1.UnaryBatchCallRequest{Calls: make([]*ocomponentsv1.UnaryCall, 0, len(batch))}
	live := make([]*queued, 0, len(batch))
	var waiting atomic.Int64
	for _, q := range batch {
		if q.ctx.Err() != nil {
			continue // its caller has gone
		}
		live = append(live, q)
		req.Calls = append(req.Calls, q.call)
	}
	if len(live) == 0 {
		return
	}
	waiting.Store(int64(len(live)))
	for _, q := range live {
		stop := context.AfterFunc(q.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	b.stats.batches.Add(1)
	b.stats.calls.Add(int64(len(live)))
	var resp ocomponentsv1.UnaryBatchCallResponse
	// The answers of many calls may together pass gRPC's default 4 MiB
	// receive limit, which each of them alone would not.
	if err := b.conn.Invoke(ctx, "/"+batchService+"/Call", req, &resp, grpc.MaxCallRecvMsgSize(math.MaxInt32)); err != nil {
		for _, q := range live {
			q.done <- outcome{err: err}
		}
		return
	}
	results := resp.GetResults()
	for i, q := range live {
		if i >= len(results) {
			q.done <- outcome{err: grpcstatus.Errorf(codes.Internal, "%s: the plugin's batch answer has no result for this call", q.call.GetMethod())}
			continue
		}
		q.done <- outcome{res: results[i]}
	}
}

// decodeResult turns a batch result into what a plain unary call would
// have returned: reply filled in, or the status error.
func decodeResult(method string, r *ocomponentsv1.UnaryResult, reply any) error {
	if r.GetCode() != int32(codes.OK) {
		return grpcstatus.FromProto(&status.Status{Code: r.GetCode(), Message: r.GetMessage(), Details: r.GetDetails()}).Err()
	}
	msg, ok := reply.(proto.Message)
	if !ok {
		return grpcstatus.Errorf(codes.Internal, "%s: reply type %T is not a protobuf message", method, reply)
	}
	if err := proto.Unmarshal(r.GetResponse(), msg); err != nil {
		return grpcstatus.Errorf(codes.Internal, "%s: decoding the response: %v", method, err)
	}
	return nil
}
