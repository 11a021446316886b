package pubsube2e

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/dapr/go-sdk/service/common"
	daprd "github.com/dapr/go-sdk/service/http"
	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// TestGoSDK: the official Go SDK end to end. client.PublishEvent publishes
// over gRPC; a subscriber built with service/http (NewService +
// AddTopicEventHandler, which serves GET /dapr/subscribe) gets the events,
// and an error with retry=true makes the sidecar deliver again.
func TestGoSDK(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			topic := e2etest.Uniq("sdk-")
			cleanupTopics(t, topic)
			res := resources(t, b.yaml(t, nil))

			type got struct {
				e   *common.TopicEvent
				nth int
			}
			var mu sync.Mutex
			events := map[string][]*common.TopicEvent{}
			received := make(chan got, 16)
			port := e2etest.FreePort(t)
			svc := daprd.NewService("127.0.0.1:" + strconv.Itoa(port))
			err := svc.AddTopicEventHandler(&common.Subscription{PubsubName: "pubsub", Topic: topic, Route: "/sdk-orders"},
				func(ctx context.Context, e *common.TopicEvent) (bool, error) {
					mu.Lock()
					events[e.ID] = append(events[e.ID], e)
					nth := len(events[e.ID])
					mu.Unlock()
					received <- got{e, nth}
					if m, _ := e.Data.(map[string]any); m["fail"] == true && nth == 1 {
						return true, errors.New("first attempt fails")
					}
					return false, nil
				})
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				if err := svc.Start(); err != nil && !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("SDK service: %v", err)
				}
			}()
			t.Cleanup(func() { _ = svc.GracefulStop() })

			sub := startSidecar(t, sidecarOpts{appID: e2etest.Uniq("sdk-sub-"), appPort: port, resources: res})
			waitSubscribed(t, sub, topic)
			pub := startSidecar(t, sidecarOpts{appID: e2etest.Uniq("sdk-pub-"), resources: res})
			client := pub.Client(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := client.PublishEvent(ctx, "pubsub", topic, map[string]any{"n": 1, "item": "kayak"}); err != nil {
				t.Fatalf("PublishEvent: %v", err)
			}
			if err := client.PublishEvent(ctx, "pubsub", topic, map[string]any{"n": 2, "fail": true}); err != nil {
				t.Fatalf("PublishEvent: %v", err)
			}

			var first, retried bool
			for !(first && retried) {
				select {
				case g := <-received:
					m, _ := g.e.Data.(map[string]any)
					switch m["n"] {
					case float64(1):
						first = true
						if g.e.Source != pub.appID || g.e.Topic != topic || g.e.PubsubName != "pubsub" ||
							g.e.Type != "com.dapr.event.sent" || g.e.SpecVersion != "1.0" || m["item"] != "kayak" {
							t.Errorf("SDK event: %+v", g.e)
						}
					case float64(2):
						retried = g.nth == 2
					}
				case <-ctx.Done():
					t.Fatalf("SDK subscriber: first event %v, retried event redelivered %v", first, retried)
				}
			}
		})
	}
}

// TestGoSDKStreamingSubscribe: client.Subscribe opens a streaming
// subscription (SubscribeTopicEventsAlpha1) with no app at all; events
// published meanwhile arrive on it, a Retry brings the event back, and the
// subscription shows in the metadata as STREAMING while it is open.
func TestGoSDKStreamingSubscribe(t *testing.T) {
	t.Parallel()
	topic := e2etest.Uniq("stream-")
	res := resources(t, sqliteYAML(t, nil))
	s := startSidecar(t, sidecarOpts{appID: e2etest.Uniq("streamer-"), resources: res})
	client := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := client.Subscribe(ctx, dapr.SubscriptionOptions{PubsubName: "pubsub", Topic: topic})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer stream.Close()
	e2etest.WaitFor(t, 10*time.Second, "a STREAMING subscription in the metadata", func() bool {
		for _, sub := range s.subscriptions(t) {
			if sub["topic"] == topic && sub["type"] == "STREAMING" {
				return true
			}
		}
		return false
	})
	for i := range 3 {
		if err := client.PublishEvent(ctx, "pubsub", topic, map[string]int{"n": i}); err != nil {
			t.Fatalf("PublishEvent: %v", err)
		}
	}
	type msg struct {
		m   *dapr.SubscriptionMessage
		err error
	}
	msgs := make(chan msg)
	go func() {
		for {
			m, err := stream.Receive()
			select {
			case msgs <- msg{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	seen := map[float64]int{}
	for len(seen) < 3 || seen[1] < 2 {
		select {
		case r := <-msgs:
			if r.err != nil {
				t.Fatalf("Receive: %v (seen %v)", r.err, seen)
			}
			data, _ := r.m.Data.(map[string]any)
			n, _ := data["n"].(float64)
			seen[n]++
			if r.m.Source != s.appID || r.m.Topic != topic {
				t.Errorf("streamed event: source %q topic %q, want %q %q", r.m.Source, r.m.Topic, s.appID, topic)
			}
			if n == 1 && seen[n] == 1 {
				err = r.m.Retry()
			} else {
				err = r.m.Success()
			}
			if err != nil {
				t.Fatalf("acknowledge: %v", err)
			}
		case <-ctx.Done():
			t.Fatalf("streamed events seen %v, want 0, 1 (twice: retried) and 2", seen)
		}
	}
}
