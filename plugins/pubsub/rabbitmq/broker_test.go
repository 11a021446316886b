package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const (
	rabbitAddr = "127.0.0.1:5672"
	rabbitURL  = "amqp://guest:guest@" + rabbitAddr
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func newBroker() sdk.PubSub { return New(discard) }

func needRabbit(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", rabbitAddr, 2*time.Second)
	if err != nil {
		t.Fatalf("RabbitMQ is not reachable at %s (%v): start it with `service rabbitmq-server start` (user guest/guest)", rabbitAddr, err)
	}
	_ = c.Close()
}

func TestConformance(t *testing.T) {
	needRabbit(t)
	// Non-durable queues: this run's (unique) queues vanish at the next
	// broker restart instead of piling up.
	t.Run("parallel", func(t *testing.T) {
		md := sdk.Metadata{"connectionString": rabbitURL, "durable": "false"}
		sdktest.ExercisePubSub(t, newBroker, md,
			sdktest.RedeliveryWithin(5*time.Second), sdktest.ReadyWithin(5*time.Second))
	})
	// One message at a time per subscription keeps the queue's order.
	t.Run("single", func(t *testing.T) {
		md := sdk.Metadata{"connectionString": rabbitURL, "durable": "false", "concurrencyMode": "single", "prefetchCount": "10"}
		sdktest.ExercisePubSub(t, newBroker, md, sdktest.Ordered(),
			sdktest.RedeliveryWithin(5*time.Second), sdktest.ReadyWithin(5*time.Second))
	})
}

func TestInitErrors(t *testing.T) {
	needRabbit(t)
	cases := map[string]sdk.Metadata{
		"no url":            {"consumerID": "g"},
		"no consumerID":     {"connectionString": rabbitURL},
		"not amqp":          {"connectionString": "http://127.0.0.1:5672", "consumerID": "g"},
		"bad bool":          {"connectionString": rabbitURL, "consumerID": "g", "durable": "maybe"},
		"bad prefetch":      {"connectionString": rabbitURL, "consumerID": "g", "prefetchCount": "-1"},
		"bad mode":          {"connectionString": rabbitURL, "consumerID": "g", "concurrencyMode": "some"},
		"bad exchange kind": {"connectionString": rabbitURL, "consumerID": "g", "exchangeKind": "round"},
		"bad delivery mode": {"connectionString": rabbitURL, "consumerID": "g", "deliveryMode": "3"},
		"wrong password":    {"connectionString": "amqp://guest:nope@" + rabbitAddr, "consumerID": "g"},
		"unreachable":       {"connectionString": "amqp://guest:guest@127.0.0.1:1", "consumerID": "g"},
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
