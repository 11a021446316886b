package sdk_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// scriptedBroker runs a test-supplied Subscribe and records publishes.
type scriptedBroker struct {
	subscribe func(ctx context.Context, req sdk.SubscribeRequest, h sdk.MessageHandler) error
	mu        sync.Mutex
	published []*sdk.PublishRequest
}

func (b *scriptedBroker) Init(context.Context, sdk.Metadata) error { return nil }

func (b *scriptedBroker) Publish(_ context.Context, r *sdk.PublishRequest) error {
	if string(r.Data) == "bad" {
		return errors.New("refused")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, r)
	return nil
}

func (b *scriptedBroker) Subscribe(ctx context.Context, req sdk.SubscribeRequest, h sdk.MessageHandler) error {
	if b.subscribe == nil {
		<-ctx.Done()
		return nil
	}
	return b.subscribe(ctx, req, h)
}

type fullBroker struct{ scriptedBroker }

func (*fullBroker) MessageTTL()         {}
func (*fullBroker) SubscribeWildcards() {}
func (*fullBroker) BulkPublish(context.Context, string, []sdk.BulkEntry, map[string]string) ([]sdk.BulkFailure, error) {
	return nil, nil
}

func TestPubSubFeaturesDerived(t *testing.T) {
	if got := sdk.PubSubFeatures(&scriptedBroker{}); len(got) != 0 {
		t.Errorf("plain broker features = %v, want none", got)
	}
	want := []string{sdk.FeatureMessageTTL, sdk.FeatureSubscribeWildcards, sdk.FeatureBulkPubSub}
	if got := sdk.PubSubFeatures(&fullBroker{}); !slices.Equal(got, want) {
		t.Errorf("full broker features = %v, want %v", got, want)
	}
}

func servePubSub(t *testing.T, b sdk.PubSub) componentsv1.PubSubClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, sdk.WithPubSub(func() sdk.PubSub { return b }), sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	reflection.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); srv.Stop(); _ = closeAll() })
	if names := listServices(t, conn); !slices.Contains(names, "dapr.proto.components.v1.PubSub") {
		t.Fatalf("reflection lists %v, want dapr.proto.components.v1.PubSub", names)
	}
	c := componentsv1.NewPubSubClient(conn)
	if _, err := c.Init(instanceCtx(t, "ps"), &componentsv1.PubSubInitRequest{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func openStream(t *testing.T, c componentsv1.PubSubClient, topic string) (componentsv1.PubSub_PullMessagesClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(instanceCtx(t, "ps"))
	s, err := c.PullMessages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&componentsv1.PullMessagesRequest{Topic: &componentsv1.Topic{Name: topic}}); err != nil {
		t.Fatal(err)
	}
	return s, cancel
}

// TestPullMessagesInFlightBound: at most MaxInFlightPerStream messages
// await their ack; an ack frees a slot; closing the stream nacks the rest
// and ends Subscribe.
func TestPullMessagesInFlightBound(t *testing.T) {
	total := sdk.MaxInFlightPerStream + 20
	var (
		results  = make(chan error, total)
		subEnded = make(chan struct{})
	)
	b := &scriptedBroker{subscribe: func(ctx context.Context, req sdk.SubscribeRequest, h sdk.MessageHandler) error {
		defer close(subEnded)
		var wg sync.WaitGroup
		for i := range total {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- h(ctx, &sdk.Message{ID: strconv.Itoa(i), Data: []byte("m")})
			}()
		}
		wg.Wait()
		return nil
	}}
	c := servePubSub(t, b)
	s, cancel := openStream(t, c, "bounded")
	defer cancel()

	var got atomic.Int64
	ids := make(chan string, total)
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				return
			}
			got.Add(1)
			ids <- m.GetId()
		}
	}()
	waitFor(t, func() bool { return got.Load() == int64(sdk.MaxInFlightPerStream) }, "the first MaxInFlightPerStream messages")
	time.Sleep(100 * time.Millisecond) // nothing more may come without an ack
	if n := got.Load(); n != int64(sdk.MaxInFlightPerStream) {
		t.Fatalf("%d messages in flight, want at most %d", n, sdk.MaxInFlightPerStream)
	}
	if err := s.Send(&componentsv1.PullMessagesRequest{AckMessageId: <-ids}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return got.Load() == int64(sdk.MaxInFlightPerStream)+1 }, "one more message after an ack")
	if err := <-results; err != nil {
		t.Fatalf("acked handler returned %v, want nil", err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-subEnded:
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not end after the stream closed")
	}
	for range total - 1 {
		if err := <-results; err == nil {
			t.Fatal("a handler whose message was never acked returned nil (ack)")
		}
	}
}

// TestPullMessagesAckRouting: messages with equal broker ids get distinct
// wire ids, and each ack or nack reaches the right handler call.
func TestPullMessagesAckRouting(t *testing.T) {
	results := make(chan [2]string, 2)
	b := &scriptedBroker{subscribe: func(ctx context.Context, req sdk.SubscribeRequest, h sdk.MessageHandler) error {
		for _, d := range []string{"x", "y"} {
			go func() {
				err := h(ctx, &sdk.Message{ID: "same", Data: []byte(d), Metadata: map[string]string{"k": d}, ContentType: "text/plain"})
				v := "ack"
				if err != nil {
					v = "nack"
				}
				results <- [2]string{d, v}
			}()
		}
		<-ctx.Done()
		return nil
	}}
	c := servePubSub(t, b)
	s, cancel := openStream(t, c, "routing")
	defer cancel()
	seen := map[string]string{}
	for range 2 {
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetTopicName() != "routing" || m.GetContentType() != "text/plain" || m.GetMetadata()["k"] != string(m.GetData()) {
			t.Fatalf("message fields not carried: %v", m)
		}
		if _, dup := seen[m.GetId()]; dup {
			t.Fatalf("two pending messages share wire id %q", m.GetId())
		}
		seen[m.GetId()] = string(m.GetData())
	}
	for id, d := range seen {
		req := &componentsv1.PullMessagesRequest{AckMessageId: id}
		if d == "y" {
			req.AckError = &componentsv1.AckMessageError{Message: "retry"}
		}
		if err := s.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"x": "ack", "y": "nack"}
	for range 2 {
		r := <-results
		if want[r[0]] != r[1] {
			t.Fatalf("message %s: handler saw %s, want %s", r[0], r[1], want[r[0]])
		}
	}
}

func TestPullMessagesSubscribeError(t *testing.T) {
	b := &scriptedBroker{subscribe: func(context.Context, sdk.SubscribeRequest, sdk.MessageHandler) error {
		return errors.New("no such topic")
	}}
	c := servePubSub(t, b)
	s, cancel := openStream(t, c, "broken")
	defer cancel()
	if _, err := s.Recv(); status.Code(err) != codes.Internal {
		t.Fatalf("stream of a failed Subscribe ended with %v, want Internal", err)
	}
}

func TestBulkPublishFallback(t *testing.T) {
	b := &scriptedBroker{}
	c := servePubSub(t, b)
	resp, err := c.BulkPublish(instanceCtx(t, "ps"), &componentsv1.BulkPublishRequest{
		Topic:    "bulk",
		Metadata: map[string]string{"shared": "req", "override": "req"},
		Entries: []*componentsv1.BulkMessageEntry{
			{EntryId: "1", Event: []byte("ok"), ContentType: "text/plain", Metadata: map[string]string{"override": "entry"}},
			{EntryId: "2", Event: []byte("bad")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := resp.GetFailedEntries(); len(f) != 1 || f[0].GetEntryId() != "2" || f[0].GetError() == "" {
		t.Fatalf("failed entries = %v, want entry 2 with its error", f)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.published) != 1 {
		t.Fatalf("published %d, want 1", len(b.published))
	}
	p := b.published[0]
	if p.Topic != "bulk" || p.ContentType != "text/plain" || p.Metadata["shared"] != "req" || p.Metadata["override"] != "entry" {
		t.Fatalf("published %+v: want topic, content type and merged metadata (entry wins)", p)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
