package pubsub

import (
	"context"
	"net"
	"testing"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	dapr "github.com/dapr/go-sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// daprServer serves the block's RPCs as the Dapr service.
type daprServer struct {
	runtimev1.UnimplementedDaprServer
	API *API
}

func (d daprServer) PublishEvent(ctx context.Context, in *runtimev1.PublishEventRequest) (*emptypb.Empty, error) {
	return d.API.PublishEvent(ctx, in)
}

func (d daprServer) SubscribeTopicEventsAlpha1(s runtimev1.Dapr_SubscribeTopicEventsAlpha1Server) error {
	return d.API.SubscribeTopicEventsAlpha1(s)
}

// TestStreamingSubscription uses the official Go SDK's client.Subscribe.
func TestStreamingSubscription(t *testing.T) {
	mb := newMemBroker()
	a := New(Config{AppID: "streamer", Brokers: testBrokers{"ps": {Name: "ps", Conn: mb.serve(t)}}, Retrier: fastRetrier})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	runtimev1.RegisterDaprServer(s, daprServer{API: a})
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	client, err := dapr.NewClientWithAddress(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	sub, err := client.Subscribe(ctx, dapr.SubscriptionOptions{PubsubName: "ps", Topic: "live"})
	if err != nil {
		t.Fatal(err)
	}
	subs := a.Subscriptions()
	if len(subs) != 1 || subs[0].GetType() != runtimev1.PubsubSubscriptionType_STREAMING {
		t.Fatalf("metadata %v", subs)
	}
	if _, err := client.Subscribe(ctx, dapr.SubscriptionOptions{PubsubName: "ps", Topic: "live"}); err == nil {
		t.Error("second streaming subscription to the same topic accepted")
	}
	if err := client.PublishEvent(ctx, "ps", "live", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != "live" || m.PubsubName != "ps" || m.Source != "streamer" || string(m.RawData) != `{"n":1}` {
		t.Errorf("event %+v", m.TopicEvent)
	}
	if err := m.Retry(); err != nil { // RETRY → delivered again
		t.Fatal(err)
	}
	m2, err := sub.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if m2.ID != m.ID {
		t.Errorf("retried event has id %s, want %s", m2.ID, m.ID)
	}
	if err := m2.Success(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ack", func() bool { acks, _ := mb.counts(); return acks == 1 })
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "subscription gone from metadata", func() bool { return len(a.Subscriptions()) == 0 })

	if _, err := client.Subscribe(ctx, dapr.SubscriptionOptions{PubsubName: "nope", Topic: "x"}); err == nil {
		t.Error("subscription to an unknown pubsub accepted")
	}
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer stopCancel()
	if err := a.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
}
