package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const natsURL = "nats://127.0.0.1:4222"

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func newBroker() sdk.PubSub { return New(discard) }

// needNATS connects to the local server and returns its max payload; the
// streams the test created (named after the kit's "ct…" topics) are deleted
// at the end.
func needNATS(t *testing.T) int {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("NATS is not reachable at %s (%v): start it with `nats-server -a 127.0.0.1 -p 4222 -js`", natsURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("NATS at %s has no JetStream (%v): start it with -js", natsURL, err)
	}
	start := time.Now()
	t.Cleanup(func() {
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l := js.ListStreams(ctx)
		for info := range l.Info() {
			if strings.HasPrefix(info.Config.Name, "ct") && info.Created.After(start.Add(-time.Second)) {
				_ = js.DeleteStream(ctx, info.Config.Name)
			}
		}
	})
	return int(nc.MaxPayload())
}

func TestConformance(t *testing.T) {
	maxPayload := needNATS(t)
	md := sdk.Metadata{"natsURL": natsURL, "ackWait": "2s", "memoryStorage": "true"}
	sdktest.ExercisePubSub(t, newBroker, md,
		sdktest.RedeliveryWithin(15*time.Second), sdktest.ReadyWithin(15*time.Second),
		// The server's max_payload bounds a message (1 MiB by default),
		// headers included.
		sdktest.LargeMessageSize(maxPayload-4096))
}

func TestOrderedSingle(t *testing.T) {
	needNATS(t)
	md := sdk.Metadata{"natsURL": natsURL, "ackWait": "2s", "memoryStorage": "true", "concurrency": "single"}
	sdktest.ExercisePubSub(t, newBroker, md, sdktest.Ordered(),
		sdktest.RedeliveryWithin(15*time.Second), sdktest.ReadyWithin(15*time.Second), sdktest.LargeMessageSize(64<<10))
}

func TestInitErrors(t *testing.T) {
	needNATS(t)
	cases := map[string]sdk.Metadata{
		"no consumer":        {"natsURL": natsURL},
		"bad deliver policy": {"natsURL": natsURL, "consumerID": "g", "deliverPolicy": "some"},
		"sequence without":   {"natsURL": natsURL, "consumerID": "g", "deliverPolicy": "sequence"},
		"bad ackWait":        {"natsURL": natsURL, "consumerID": "g", "ackWait": "soon"},
		"zero maxDeliver":    {"natsURL": natsURL, "consumerID": "g", "maxDeliver": "0"},
		"bad backOff":        {"natsURL": natsURL, "consumerID": "g", "backOff": "1s,x"},
		"bad concurrency":    {"natsURL": natsURL, "consumerID": "g", "concurrency": "many"},
		"jwt without seed":   {"natsURL": natsURL, "consumerID": "g", "jwt": "x"},
		"unreachable":        {"natsURL": "nats://127.0.0.1:1", "consumerID": "g", "connectTimeout": "200ms"},
	}
	for name, md := range cases {
		t.Run(name, func(t *testing.T) {
			b := newBroker()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := b.Init(ctx, md); err == nil {
				t.Fatalf("Init(%v) succeeded, want an error", md)
			}
			_ = b.(sdk.Closer).Close()
		})
	}
}

// TestPublishCreatesStream: publishing to a subject no stream captures
// creates the topic's stream, and a later subscription (deliverPolicy all)
// gets the message.
func TestPublishCreatesStream(t *testing.T) {
	needNATS(t)
	topic := "ct" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-first"
	b := newBroker()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Init(ctx, sdk.Metadata{"natsURL": natsURL, "consumerID": "g", "memoryStorage": "true"}); err != nil {
		t.Fatal(err)
	}
	defer b.(sdk.Closer).Close()
	if err := b.Publish(ctx, &sdk.PublishRequest{Topic: topic, Data: []byte("early")}); err != nil {
		t.Fatalf("Publish before any subscription: %v", err)
	}
	got := make(chan string, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = b.Subscribe(sctx, sdk.SubscribeRequest{Topic: topic}, func(_ context.Context, m *sdk.Message) error {
			select {
			case got <- string(m.Data):
			default:
			}
			return nil
		})
	}()
	select {
	case d := <-got:
		if d != "early" {
			t.Fatalf("got %q, want %q", d, "early")
		}
	case <-ctx.Done():
		t.Fatal("the message published before the subscription never came")
	}
}
