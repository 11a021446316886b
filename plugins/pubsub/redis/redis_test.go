package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func uniqueTopic(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	topic := "pubsub-redis-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: redisAddr})
		defer c.Close()
		_ = c.Del(context.Background(), topic).Err()
	})
	return topic
}

func newBroker(t *testing.T, md sdk.Metadata) *Broker {
	t.Helper()
	needRedis(t)
	b := New().(*Broker)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Init(ctx, md); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func subscribe(t *testing.T, b *Broker, topic string, h sdk.MessageHandler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Subscribe(ctx, sdk.SubscribeRequest{Topic: topic}, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Subscribe: %v", err)
		}
	})
}

// TestReclaimFromDeadConsumer: an entry read by a consumer that died
// without acking is delivered to a live one after processingTimeout, and
// entries written by Dapr's pubsub.redis (field data only) are read.
func TestReclaimFromDeadConsumer(t *testing.T) {
	topic := uniqueTopic(t)
	raw := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer raw.Close()
	ctx := context.Background()
	const group = "reclaim-group"
	if err := raw.XGroupCreateMkStream(ctx, topic, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// As Dapr writes it: one field, data.
	if err := raw.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: []any{"data", "from-dapr"}}).Err(); err != nil {
		t.Fatal(err)
	}
	// A consumer reads it and dies.
	if err := raw.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "dead", Streams: []string{topic, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	read := time.Now()
	b := newBroker(t, sdk.Metadata{"redisHost": redisAddr, "consumerID": group, "processingTimeout": "500ms", "redeliverInterval": "100ms"})
	got := make(chan *sdk.Message, 1)
	subscribe(t, b, topic, func(_ context.Context, m *sdk.Message) error { got <- m; return nil })
	select {
	case m := <-got:
		if string(m.Data) != "from-dapr" || m.Topic != topic {
			t.Fatalf("got %q on %q, want from-dapr on %q", m.Data, m.Topic, topic)
		}
		if d := time.Since(read); d < 450*time.Millisecond {
			t.Fatalf("reclaimed after %v, before processingTimeout", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dead consumer's entry was not reclaimed")
	}
	// Acked: nothing stays pending.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := raw.XPending(ctx, topic, group).Result()
		if err != nil {
			t.Fatal(err)
		}
		if p.Count == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries still pending after the ack", p.Count)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMaxLenApprox: streams are trimmed on publish.
func TestMaxLenApprox(t *testing.T) {
	topic := uniqueTopic(t)
	b := newBroker(t, sdk.Metadata{"redisHost": redisAddr, "consumerID": "trim", "maxLenApprox": "100"})
	entries := make([]sdk.BulkEntry, 1000)
	for i := range entries {
		entries[i] = sdk.BulkEntry{EntryID: "e", Data: []byte("x")}
	}
	if failed, err := b.BulkPublish(context.Background(), topic, entries, nil); err != nil || len(failed) > 0 {
		t.Fatalf("BulkPublish: %v %v", failed, err)
	}
	n, err := b.client.XLen(context.Background(), topic).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n >= 1000 || n < 100 {
		t.Fatalf("stream length %d after 1000 publishes with maxLenApprox 100", n)
	}
}
