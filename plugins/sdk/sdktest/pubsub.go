package sdktest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// PubSubOption tunes ExercisePubSub to what a broker promises.
type PubSubOption func(*pubsubConfig)

type pubsubConfig struct {
	ordered      bool
	uneven       bool
	redelivery   time.Duration
	ready        time.Duration
	largeMessage int
}

// Ordered says the broker keeps publish order within a partition (one topic,
// one partition key) for one consumer; the kit then checks it.
func Ordered() PubSubOption { return func(c *pubsubConfig) { c.ordered = true } }

// RedeliveryWithin bounds how long a nacked or abandoned message may take to
// come again (default 15 s); brokers that reclaim after a processing timeout
// should set a short one in md and pass a matching bound here.
func RedeliveryWithin(d time.Duration) PubSubOption {
	return func(c *pubsubConfig) { c.redelivery = d }
}

// ReadyWithin bounds how long a new subscription may take before messages
// published to it are delivered (default 15 s).
func ReadyWithin(d time.Duration) PubSubOption { return func(c *pubsubConfig) { c.ready = d } }

// UnevenCompetition says two consumers of one group may not both get
// messages (e.g. a topic with a single partition); the kit then only checks
// that no message reaches both.
func UnevenCompetition() PubSubOption { return func(c *pubsubConfig) { c.uneven = true } }

// LargeMessageSize sets the size of the large-message test (default 1 MiB).
func LargeMessageSize(n int) PubSubOption { return func(c *pubsubConfig) { c.largeMessage = n } }

// probePrefix marks warm-up messages; streams ack and hide them.
const probePrefix = "probe:"

// pubsubHarness is a broker served by the SDK over bufconn plus its client.
type pubsubHarness struct {
	t      *testing.T
	cfg    pubsubConfig
	run    string
	md     sdk.Metadata
	caps   []string // features the type's markers imply
	conn   *grpc.ClientConn
	client componentsv1.PubSubClient
	inits  map[string]bool // initialised instances
	mu     sync.Mutex
}

// ExercisePubSub checks a pub/sub broker against the plugin contract through
// a real gRPC pair with the generated clients: features, bad input, publish →
// receive with all fields, bulk publish, redelivery on nack, at-least-once
// across a consumer restart, competing consumers (two instances with one
// consumerID split the messages), fan-out (two consumerIDs each get all),
// large messages, ordering (Ordered) and TTL (when the broker is a
// MessageTTLer). md is the component metadata; the kit sets consumerID per
// instance. Topic names are unique per run, so shared servers may be reused.
func ExercisePubSub(t *testing.T, newPubSub func() sdk.PubSub, md sdk.Metadata, opts ...PubSubOption) {
	t.Helper()
	cfg := pubsubConfig{redelivery: 15 * time.Second, ready: 15 * time.Second, largeMessage: 1 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	probe := newPubSub()
	if probe == nil {
		t.Fatal("factory returned a nil broker")
	}
	caps := sdk.PubSubFeatures(probe)
	if c, ok := probe.(sdk.Closer); ok {
		_ = c.Close() // never Init'ed; closing must be harmless
	}
	h := &pubsubHarness{t: t, cfg: cfg, run: randomID(), md: md, caps: caps, inits: map[string]bool{}}
	h.conn = servePubSub(t, newPubSub)
	h.client = componentsv1.NewPubSubClient(h.conn)

	t.Run("uninitialised instance", h.testUninitialised)
	h.initInstance(t, "a", "group-a")
	t.Run("features", h.testFeatures)
	t.Run("ping", h.testPing)
	t.Run("bad input", h.testBadInput)
	t.Run("publish and receive", h.testPublishReceive)
	t.Run("bulk publish", h.testBulkPublish)
	t.Run("batched publishes", h.testBatchedPublish)
	t.Run("redelivery on nack", h.testNack)
	t.Run("at-least-once across consumer restart", h.testRestart)
	t.Run("competing consumers", h.testCompeting)
	t.Run("fan-out to two groups", h.testFanOut)
	t.Run("large messages", h.testLarge)
	if cfg.ordered {
		t.Run("ordering", h.testOrdering)
	}
	if slices.Contains(caps, sdk.FeatureMessageTTL) {
		t.Run("message ttl", h.testTTL)
	}
}

func servePubSub(t *testing.T, newPubSub func() sdk.PubSub) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(4 << 20)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))
	closeAll, err := sdk.Register(srv, sdk.WithPubSub(newPubSub), sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatalf("sdk.Register: %v", err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)),
	)
	if err != nil {
		t.Fatalf("dialing bufconn: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		if err := closeAll(); err != nil {
			t.Errorf("closing broker: %v", err)
		}
	})
	return conn
}

// instance names are unique per run: "<run>-<name>".
func (h *pubsubHarness) instance(name string) string { return "conformance-" + h.run + "-" + name }

func (h *pubsubHarness) topic(name string) string { return "ct" + h.run + "-" + name }

func (h *pubsubHarness) ctxFor(instance string, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	return metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, h.instance(instance)), cancel
}

// initInstance initialises instance name with consumerID group (unique per run).
func (h *pubsubHarness) initInstance(t *testing.T, name, group string) {
	t.Helper()
	h.mu.Lock()
	done := h.inits[name]
	h.inits[name] = true
	h.mu.Unlock()
	if done {
		return
	}
	md := maps.Clone(h.md)
	if md == nil {
		md = sdk.Metadata{}
	}
	md[sdk.ConsumerIDKey] = "ct" + h.run + "-" + group
	ctx, cancel := h.ctxFor(name, callTimeout)
	defer cancel()
	if _, err := h.client.Init(ctx, &componentsv1.PubSubInitRequest{Metadata: &componentsv1.MetadataRequest{Properties: md}}); err != nil {
		t.Fatalf("Init instance %s (consumerID %s): %v", name, md[sdk.ConsumerIDKey], err)
	}
}

func (h *pubsubHarness) publish(t *testing.T, instance, topic string, data []byte, contentType string, md map[string]string) {
	t.Helper()
	ctx, cancel := h.ctxFor(instance, callTimeout)
	defer cancel()
	_, err := h.client.Publish(ctx, &componentsv1.PublishRequest{Topic: topic, Data: data, ContentType: contentType, Metadata: md, PubsubName: "conformance"})
	if err != nil {
		t.Fatalf("Publish to %s (%d bytes): %v", topic, len(data), err)
	}
}

// --- subscription stream client --------------------------------------------

type received struct {
	msg *componentsv1.PullMessagesResponse
	at  time.Time
}

// stream is one PullMessages subscription as a host drives it. Probe
// messages are acked and counted, never queued.
type stream struct {
	name   string
	topic  string
	cancel context.CancelFunc
	s      componentsv1.PubSub_PullMessagesClient
	msgs   chan received
	done   chan struct{} // closed when the receive loop ends
	err    error         // why it ended; read after done

	sendMu sync.Mutex
	mu     sync.Mutex
	probes int
}

func (h *pubsubHarness) subscribe(t *testing.T, instance, topic string) *stream {
	t.Helper()
	ctx, cancel := h.ctxFor(instance, 5*time.Minute)
	s, err := h.client.PullMessages(ctx)
	if err != nil {
		cancel()
		t.Fatalf("PullMessages (%s, %s): %v", instance, topic, err)
	}
	st := &stream{name: instance, topic: topic, cancel: cancel, s: s, msgs: make(chan received, 4096), done: make(chan struct{})}
	if err := s.Send(&componentsv1.PullMessagesRequest{Topic: &componentsv1.Topic{Name: topic}}); err != nil {
		cancel()
		t.Fatalf("PullMessages (%s, %s): sending the topic: %v", instance, topic, err)
	}
	go st.loop()
	t.Cleanup(st.close)
	return st
}

func (st *stream) loop() {
	for {
		m, err := st.s.Recv()
		if err != nil {
			st.err = err
			close(st.msgs)
			close(st.done)
			return
		}
		if bytes.HasPrefix(m.GetData(), []byte(probePrefix)) {
			st.mu.Lock()
			st.probes++
			st.mu.Unlock()
			_ = st.ack(m.GetId(), "")
			continue
		}
		st.msgs <- received{msg: m, at: time.Now()}
	}
}

func (st *stream) endErr() error {
	<-st.done
	return st.err
}

func (st *stream) probeCount() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.probes
}

// ack acknowledges id; a non-empty nack message makes it a nack.
func (st *stream) ack(id, nack string) error {
	req := &componentsv1.PullMessagesRequest{AckMessageId: id}
	if nack != "" {
		req.AckError = &componentsv1.AckMessageError{Message: nack}
	}
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	return st.s.Send(req)
}

// close ends the subscription as a host does: half-close, then wait for
// the broker side to end the stream (so acks already sent are processed).
func (st *stream) close() {
	st.sendMu.Lock()
	_ = st.s.CloseSend()
	st.sendMu.Unlock()
	select {
	case <-st.done:
	case <-time.After(callTimeout):
	}
	st.cancel()
}

// kill ends the subscription abruptly, as a crashing consumer does.
func (st *stream) kill() { st.cancel() }

// next returns the next message or fails the test after d.
func (st *stream) next(t *testing.T, d time.Duration, what string) *componentsv1.PullMessagesResponse {
	t.Helper()
	select {
	case r, ok := <-st.msgs:
		if !ok {
			t.Fatalf("%s: subscription stream %s ended while waiting for %s: %v", st.topic, st.name, what, st.endErr())
		}
		return r.msg
	case <-time.After(d):
		t.Fatalf("%s: no message on %s within %v while waiting for %s", st.topic, st.name, d, what)
	}
	return nil
}

// quiet fails the test if a message arrives within d.
func (st *stream) quiet(t *testing.T, d time.Duration, why string) {
	t.Helper()
	select {
	case r, ok := <-st.msgs:
		if ok {
			t.Fatalf("%s: unexpected message %q on %s: %s", st.topic, abbreviate(r.msg.GetData()), st.name, why)
		}
	case <-time.After(d):
	}
}

// warmUp publishes probes until every stream has received one, so later
// messages are not published before the subscriptions are live.
func (h *pubsubHarness) warmUp(t *testing.T, publisher, topic string, streams ...*stream) {
	t.Helper()
	deadline := time.Now().Add(h.cfg.ready)
	for i := 0; ; i++ {
		ready := true
		for _, st := range streams {
			if st.probeCount() == 0 {
				ready = false
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			counts := make([]string, len(streams))
			for j, st := range streams {
				counts[j] = st.name + "=" + strconv.Itoa(st.probeCount())
			}
			t.Fatalf("%s: subscriptions not live within %v (probe messages received: %s)", topic, h.cfg.ready, strings.Join(counts, ", "))
		}
		if i%5 == 0 { // a probe every 100 ms, polled every 20 ms
			h.publish(t, publisher, topic, []byte(probePrefix+strconv.Itoa(i)), "text/plain", nil)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --- tests -------------------------------------------------------------------

func (h *pubsubHarness) testUninitialised(t *testing.T) {
	ctx, cancel := h.ctxFor("never-initialised", callTimeout)
	defer cancel()
	_, err := h.client.Publish(ctx, &componentsv1.PublishRequest{Topic: "x", Data: []byte("x")})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Publish on an uninitialised instance: got %v, want FailedPrecondition", err)
	}
}

func (h *pubsubHarness) testFeatures(t *testing.T) {
	ctx, cancel := h.ctxFor("a", callTimeout)
	defer cancel()
	resp, err := h.client.Features(ctx, &componentsv1.FeaturesRequest{})
	if err != nil {
		t.Fatalf("Features: %v", err)
	}
	got := slices.Sorted(slices.Values(resp.GetFeatures()))
	want := slices.Sorted(slices.Values(h.caps))
	if !slices.Equal(got, want) {
		t.Fatalf("Features = %v, want %v (derived from the broker's capability interfaces)", got, want)
	}
}

func (h *pubsubHarness) testPing(t *testing.T) {
	ctx, cancel := h.ctxFor("a", callTimeout)
	defer cancel()
	if _, err := h.client.Ping(ctx, &componentsv1.PingRequest{}); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func (h *pubsubHarness) testBadInput(t *testing.T) {
	ctx, cancel := h.ctxFor("a", callTimeout)
	defer cancel()
	if _, err := h.client.Publish(ctx, &componentsv1.PublishRequest{Data: []byte("x")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Publish without a topic: got %v, want InvalidArgument", err)
	}
	s, err := h.client.PullMessages(ctx)
	if err != nil {
		t.Fatalf("PullMessages: %v", err)
	}
	if err := s.Send(&componentsv1.PullMessagesRequest{AckMessageId: "nope"}); err != nil {
		t.Fatalf("PullMessages send: %v", err)
	}
	if _, err := s.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("PullMessages whose first request names no topic: got %v, want InvalidArgument", err)
	}
}

func (h *pubsubHarness) testPublishReceive(t *testing.T) {
	topic := h.topic("basic")
	st := h.subscribe(t, "a", topic)
	h.warmUp(t, "a", topic, st)
	payloads := map[string]string{
		`{"order":1}`:    "application/json",
		"plain text ✓":   "text/plain",
		"\x00\x01\xffxx": "application/octet-stream",
	}
	for data, ct := range payloads {
		h.publish(t, "a", topic, []byte(data), ct, map[string]string{"rawPayload": "true"})
	}
	for n := len(payloads); n > 0; n-- {
		m := st.next(t, h.cfg.ready, "a published message")
		ct, ok := payloads[string(m.GetData())]
		if !ok {
			t.Fatalf("received %q, which was not published (or is a duplicate)", abbreviate(m.GetData()))
		}
		delete(payloads, string(m.GetData()))
		if m.GetTopicName() != topic {
			t.Errorf("topic_name = %q, want %q", m.GetTopicName(), topic)
		}
		if m.GetId() == "" {
			t.Errorf("message %q has no id", abbreviate(m.GetData()))
		}
		if m.GetContentType() != ct {
			t.Errorf("message %q: content_type = %q, want %q", abbreviate(m.GetData()), m.GetContentType(), ct)
		}
		if err := st.ack(m.GetId(), ""); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	st.quiet(t, 300*time.Millisecond, "every message was acked once; nothing more may come")
}

func (h *pubsubHarness) testBulkPublish(t *testing.T) {
	topic := h.topic("bulk")
	st := h.subscribe(t, "a", topic)
	h.warmUp(t, "a", topic, st)
	const n = 10
	req := &componentsv1.BulkPublishRequest{Topic: topic, PubsubName: "conformance"}
	want := map[string]bool{}
	for i := range n {
		d := "bulk-" + strconv.Itoa(i)
		want[d] = true
		req.Entries = append(req.Entries, &componentsv1.BulkMessageEntry{EntryId: strconv.Itoa(i), Event: []byte(d), ContentType: "text/plain"})
	}
	ctx, cancel := h.ctxFor("a", callTimeout)
	resp, err := h.client.BulkPublish(ctx, req)
	cancel()
	if err != nil {
		t.Fatalf("BulkPublish: %v", err)
	}
	if len(resp.GetFailedEntries()) > 0 {
		t.Fatalf("BulkPublish failed entries: %v", resp.GetFailedEntries())
	}
	for range n {
		m := st.next(t, h.cfg.ready, "a bulk-published message")
		if !want[string(m.GetData())] {
			t.Fatalf("received %q: not published or a duplicate", abbreviate(m.GetData()))
		}
		delete(want, string(m.GetData()))
		_ = st.ack(m.GetId(), "")
	}
}

// testBatchedPublish sends Publishes on two topics in one UnaryBatch, as the
// host does under load: each message arrives once on its own topic with its
// own content type, and a malformed publish in a batch fails alone.
func (h *pubsubHarness) testBatchedPublish(t *testing.T) {
	ta, tb := h.topic("batch-a"), h.topic("batch-b")
	sa, sb := h.subscribe(t, "a", ta), h.subscribe(t, "a", tb)
	h.warmUp(t, "a", ta, sa)
	h.warmUp(t, "a", tb, sb)
	pub := func(topic, data, ct string) batched {
		return batched{componentsv1.PubSub_Publish_FullMethodName, &componentsv1.PublishRequest{
			Topic: topic, PubsubName: "conformance", Data: []byte(data), ContentType: ct, Metadata: map[string]string{"rawPayload": "true"}}}
	}
	replies := func(n int) []proto.Message {
		out := make([]proto.Message, n)
		for i := range out {
			out[i] = &componentsv1.PublishResponse{}
		}
		return out
	}
	errs := callBatch(t, h.conn, h.instance("a"), []batched{
		pub(ta, "batch-1", "text/plain"), pub(tb, `{"batch":2}`, "application/json"), pub(ta, "batch-3", "text/plain"),
	}, replies(3))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("batched publish %d: %v", i, err)
		}
	}
	errs = callBatch(t, h.conn, h.instance("a"), []batched{pub("", "no-topic", "text/plain"), pub(tb, "batch-4", "text/plain")}, replies(2))
	if status.Code(errs[0]) != codes.InvalidArgument {
		t.Errorf("batched publish with no topic: want InvalidArgument, got %v", errs[0])
	}
	if errs[1] != nil {
		t.Fatalf("batched publish beside a malformed one: %v", errs[1])
	}
	for _, c := range []struct {
		st   *stream
		want map[string]string // data → content type
	}{
		{sa, map[string]string{"batch-1": "text/plain", "batch-3": "text/plain"}},
		{sb, map[string]string{`{"batch":2}`: "application/json", "batch-4": "text/plain"}},
	} {
		for n := len(c.want); n > 0; n-- {
			m := c.st.next(t, h.cfg.ready, "a batched message")
			ct, ok := c.want[string(m.GetData())]
			if !ok {
				t.Fatalf("topic %s received %q: not published there, or a duplicate", m.GetTopicName(), abbreviate(m.GetData()))
			}
			delete(c.want, string(m.GetData()))
			if m.GetContentType() != ct {
				t.Errorf("message %q: content_type = %q, want %q", abbreviate(m.GetData()), m.GetContentType(), ct)
			}
			if err := c.st.ack(m.GetId(), ""); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		c.st.quiet(t, 300*time.Millisecond, "every batched message was acked once")
	}
}

func (h *pubsubHarness) testNack(t *testing.T) {
	topic := h.topic("nack")
	st := h.subscribe(t, "a", topic)
	h.warmUp(t, "a", topic, st)
	h.publish(t, "a", topic, []byte("retry-me"), "text/plain", nil)
	m := st.next(t, h.cfg.ready, "the message")
	if err := st.ack(m.GetId(), "app said RETRY"); err != nil {
		t.Fatalf("nack: %v", err)
	}
	m2 := st.next(t, h.cfg.redelivery, "the nacked message to come again")
	if string(m2.GetData()) != "retry-me" {
		t.Fatalf("after a nack received %q, want the nacked message again", abbreviate(m2.GetData()))
	}
	_ = st.ack(m2.GetId(), "")
	st.quiet(t, 300*time.Millisecond, "the redelivered message was acked")
}

func (h *pubsubHarness) testRestart(t *testing.T) {
	topic := h.topic("restart")
	st := h.subscribe(t, "a", topic)
	h.warmUp(t, "a", topic, st)
	h.publish(t, "a", topic, []byte("unacked"), "text/plain", nil)
	m := st.next(t, h.cfg.ready, "the message")
	if string(m.GetData()) != "unacked" {
		t.Fatalf("received %q, want %q", abbreviate(m.GetData()), "unacked")
	}
	st.kill() // the consumer dies before acking
	// Published while the group has no live consumer.
	h.publish(t, "a", topic, []byte("while-down"), "text/plain", nil)

	st2 := h.subscribe(t, "a", topic)
	want := map[string]bool{"unacked": true, "while-down": true}
	deadline := time.Now().Add(h.cfg.redelivery + h.cfg.ready)
	for len(want) > 0 {
		m := st2.next(t, time.Until(deadline), fmt.Sprintf("%v after the consumer restarted", slices.Collect(maps.Keys(want))))
		delete(want, string(m.GetData()))
		_ = st2.ack(m.GetId(), "")
	}
}

func (h *pubsubHarness) testCompeting(t *testing.T) {
	h.initInstance(t, "b", "group-a") // a second instance of the same consumer group
	topic := h.topic("compete")
	s1 := h.subscribe(t, "a", topic)
	s2 := h.subscribe(t, "b", topic)
	if h.cfg.uneven {
		h.warmUp(t, "a", topic, s1)
	} else {
		h.warmUp(t, "a", topic, s1, s2) // both consumers got messages: the group's load is split
	}
	const n = 30
	for i := range n {
		h.publish(t, "a", topic, []byte("c-"+strconv.Itoa(i)), "text/plain", nil)
	}
	seen := map[string]string{}
	deadline := time.Now().Add(h.cfg.ready)
	for len(seen) < n {
		var r received
		var from string
		select {
		case r = <-s1.msgs:
			from = "a"
			_ = s1.ack(r.msg.GetId(), "")
		case r = <-s2.msgs:
			from = "b"
			_ = s2.ack(r.msg.GetId(), "")
		case <-time.After(time.Until(deadline)):
			t.Fatalf("competing consumers got %d of %d messages within %v", len(seen), n, h.cfg.ready)
		}
		if r.msg == nil {
			t.Fatal("a subscription stream ended")
		}
		d := string(r.msg.GetData())
		if prev, dup := seen[d]; dup {
			t.Fatalf("message %q delivered to instance %s and again to %s of the same consumer group without a nack", d, prev, from)
		}
		seen[d] = from
	}
	s1.quiet(t, 200*time.Millisecond, "every message was acked once")
	s2.quiet(t, 100*time.Millisecond, "every message was acked once")
}

func (h *pubsubHarness) testFanOut(t *testing.T) {
	h.initInstance(t, "g2", "group-b") // another consumer group
	topic := h.topic("fanout")
	s1 := h.subscribe(t, "a", topic)
	s2 := h.subscribe(t, "g2", topic)
	h.warmUp(t, "a", topic, s1, s2)
	const n = 20
	for i := range n {
		h.publish(t, "a", topic, []byte("f-"+strconv.Itoa(i)), "text/plain", nil)
	}
	for _, st := range []*stream{s1, s2} {
		got := map[string]bool{}
		for len(got) < n {
			m := st.next(t, h.cfg.ready, fmt.Sprintf("fan-out message %d of %d", len(got)+1, n))
			got[string(m.GetData())] = true
			_ = st.ack(m.GetId(), "")
		}
	}
}

func (h *pubsubHarness) testLarge(t *testing.T) {
	topic := h.topic("large")
	st := h.subscribe(t, "a", topic)
	h.warmUp(t, "a", topic, st)
	big := make([]byte, h.cfg.largeMessage)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	copy(big, "large:")
	h.publish(t, "a", topic, big, "application/octet-stream", nil)
	m := st.next(t, h.cfg.ready, "the large message")
	if !bytes.Equal(m.GetData(), big) {
		t.Fatalf("large message: got %d bytes, want %d identical bytes", len(m.GetData()), len(big))
	}
	_ = st.ack(m.GetId(), "")
}

func (h *pubsubHarness) testOrdering(t *testing.T) {
	topic := h.topic("order")
	st := h.subscribe(t, "a", topic)
	h.warmUp(t, "a", topic, st)
	const n = 50
	md := map[string]string{"partitionKey": "one"}
	for i := range n {
		h.publish(t, "a", topic, []byte("o-"+strconv.Itoa(i)), "text/plain", md)
	}
	for i := range n {
		m := st.next(t, h.cfg.ready, "ordered message "+strconv.Itoa(i))
		if want := "o-" + strconv.Itoa(i); string(m.GetData()) != want {
			t.Fatalf("message %d is %q, want %q (publish order within a partition)", i, abbreviate(m.GetData()), want)
		}
		_ = st.ack(m.GetId(), "")
	}
}

func (h *pubsubHarness) testTTL(t *testing.T) {
	topic := h.topic("ttl")
	st := h.subscribe(t, "a", topic)
	h.warmUp(t, "a", topic, st)
	st.close() // nobody consumes while the message expires
	h.publish(t, "a", topic, []byte("expires"), "text/plain", map[string]string{sdk.TTLMetadataKey: "1"})
	h.publish(t, "a", topic, []byte("stays"), "text/plain", map[string]string{sdk.TTLMetadataKey: "60"})
	// The TTL must pass; no event marks that. 2.1 s, not 1 s: brokers such as
	// Mosquitto keep expiry in whole seconds, so a 1 s TTL can last almost 2 s.
	time.Sleep(2100 * time.Millisecond)
	st2 := h.subscribe(t, "a", topic)
	m := st2.next(t, h.cfg.ready, "the unexpired message")
	if string(m.GetData()) != "stays" {
		t.Fatalf("received %q after its ttl passed", abbreviate(m.GetData()))
	}
	_ = st2.ack(m.GetId(), "")
	st2.quiet(t, 500*time.Millisecond, "the other message's ttl has passed")
}
