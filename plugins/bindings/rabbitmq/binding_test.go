package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/grpc/codes"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const (
	rabbitAddr = "127.0.0.1:5672"
	rabbitURL  = "amqp://guest:guest@" + rabbitAddr
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// broker is an independent AMQP connection for triggering and observing;
// it deletes the test's queues at the end.
type broker struct {
	t    *testing.T
	conn *amqp.Connection
}

func newBroker(t *testing.T) *broker {
	t.Helper()
	c, err := net.DialTimeout("tcp", rabbitAddr, 2*time.Second)
	if err != nil {
		t.Fatalf("RabbitMQ is not reachable at %s (%v): start it with `service rabbitmq-server start` (user guest/guest)", rabbitAddr, err)
	}
	_ = c.Close()
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		t.Fatalf("test connection to RabbitMQ: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &broker{t: t, conn: conn}
}

func (b *broker) channel() *amqp.Channel {
	b.t.Helper()
	ch, err := b.conn.Channel()
	if err != nil {
		b.t.Fatalf("test channel: %v", err)
	}
	return ch
}

// queue returns a fresh queue name, deleted when the test ends.
func (b *broker) queue(prefix string) string {
	name := "outrigger-test-" + prefix + "-" + time.Now().Format("150405.000000")
	b.t.Cleanup(func() {
		if ch, err := b.conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(name, false, false, false)
			_ = ch.Close()
		}
	})
	return name
}

func (b *broker) publish(t *testing.T, queue string, p amqp.Publishing) {
	t.Helper()
	ch := b.channel()
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ch.PublishWithContext(ctx, "", queue, false, false, p); err != nil {
		t.Fatalf("publish to %s: %v", queue, err)
	}
}

// get waits for one message on queue and acks it.
func (b *broker) get(t *testing.T, queue string) amqp.Delivery {
	t.Helper()
	ch := b.channel()
	defer ch.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message on %s within 5s", queue)
		}
		time.Sleep(20 * time.Millisecond) // basic.get has no wait; poll
	}
}

// count is the number of ready messages in queue.
func (b *broker) count(t *testing.T, queue string) int {
	t.Helper()
	ch := b.channel()
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Messages
}

func TestInputConformance(t *testing.T) {
	b := newBroker(t)
	queue := b.queue("in")
	sdktest.ExerciseInputBinding(t, func() sdk.InputBinding { return NewInput(quiet) }, sdktest.InputBindingCase{
		Metadata:    sdk.Metadata{"host": rabbitURL, "queueName": queue, "durable": "false"},
		BadMetadata: sdk.Metadata{"host": rabbitURL},
		Trigger: func(t *testing.T, token string) {
			b.publish(t, queue, amqp.Publishing{Body: []byte(token)})
		},
		Redelivers: true,
		Within:     10 * time.Second,
	})
}

func TestOutputConformance(t *testing.T) {
	b := newBroker(t)
	queue := b.queue("out")
	expect := func(check func(t *testing.T, d amqp.Delivery)) func(*testing.T, *sdk.InvokeResponse) {
		return func(t *testing.T, _ *sdk.InvokeResponse) { check(t, b.get(t, queue)) }
	}
	sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return NewOutput(quiet) }, sdktest.OutputBindingCase{
		Metadata:    sdk.Metadata{"host": rabbitURL, "queueName": queue, "durable": "false", "contentType": "text/plain"},
		BadMetadata: sdk.Metadata{"host": "amqp://guest:guest@127.0.0.1:1", "queueName": queue},
		Operations:  []string{"create"},
		Calls: []sdktest.OutputCall{
			{Name: "create", Operation: "create", Data: []byte(`hello`), Check: expect(func(t *testing.T, d amqp.Delivery) {
				if string(d.Body) != "hello" || d.ContentType != "text/plain" || d.Expiration != "" {
					t.Fatalf("got body %q content type %q expiration %q, want hello, text/plain, none", d.Body, d.ContentType, d.Expiration)
				}
			})},
			{Name: "metadata", Operation: "create", Data: []byte(`{"a":1}`),
				Metadata: map[string]string{"ttlInSeconds": "60", "contentType": "application/json", "traceparent": "00-abc-def-01"},
				Check: expect(func(t *testing.T, d amqp.Delivery) {
					if d.Expiration != "60000" || d.ContentType != "application/json" || d.Headers["traceparent"] != "00-abc-def-01" {
						t.Fatalf("got expiration %q content type %q headers %v", d.Expiration, d.ContentType, d.Headers)
					}
					if _, ok := d.Headers["ttlInSeconds"]; ok {
						t.Fatal("ttlInSeconds travelled as a header")
					}
				})},
			{Name: "bad ttl", Operation: "create", Metadata: map[string]string{"ttlInSeconds": "soon"}, WantCode: codes.InvalidArgument},
			{Name: "priority refused", Operation: "create", Metadata: map[string]string{"priority": "5"}, WantCode: codes.InvalidArgument},
		},
	})
}

// TestOutputBeforeInput: the output side declares the queue, so a message
// published before any reader started waits for it.
func TestOutputBeforeInput(t *testing.T) {
	b := newBroker(t)
	queue := b.queue("early")
	md := sdk.Metadata{"host": rabbitURL, "queueName": queue, "durable": "false"}
	out := NewOutput(quiet)
	if err := out.Init(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := out.Invoke(context.Background(), &sdk.InvokeRequest{Operation: "create", Data: []byte("early")}); err != nil {
		t.Fatal(err)
	}
	in := NewInput(quiet)
	if err := in.Init(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	got := make(chan string, 1)
	stop := read(in, func(_ context.Context, ev *sdk.BindingEvent) ([]byte, error) {
		got <- string(ev.Data)
		return nil, nil
	})
	defer stop()
	select {
	case d := <-got:
		if d != "early" {
			t.Fatalf("got %q, want early", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message published before the reader started never came")
	}
}

// TestQueueTTL: ttlInSeconds is the queue's message TTL (x-message-ttl),
// as Dapr declares it.
func TestQueueTTL(t *testing.T) {
	b := newBroker(t)
	queue := b.queue("ttl")
	out := NewOutput(quiet)
	if err := out.Init(context.Background(), sdk.Metadata{"host": rabbitURL, "queueName": queue, "durable": "false", "ttlInSeconds": "1"}); err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := out.Invoke(context.Background(), &sdk.InvokeRequest{Operation: "create", Data: []byte("short-lived")}); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, queue); n != 1 {
		t.Fatalf("queue holds %d messages right after publish, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.count(t, queue) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the message outlived the queue's 1s TTL")
		}
		time.Sleep(100 * time.Millisecond) // the broker signals no expiry; poll
	}
	// The declaration carries the TTL: declaring the queue without it is refused.
	ch := b.channel()
	defer ch.Close()
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err == nil {
		t.Fatal("queue declared without x-message-ttl; want PRECONDITION_FAILED")
	}
}

// TestExclusive: an exclusive queue belongs to the input side's connection;
// the output side publishes to it without declaring it.
func TestExclusive(t *testing.T) {
	b := newBroker(t)
	queue := b.queue("excl")
	md := sdk.Metadata{"host": rabbitURL, "queueName": queue, "durable": "false", "exclusive": "true"}
	in := NewInput(quiet)
	if err := in.Init(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	ch := b.channel()
	_, err := ch.QueueDeclare(queue, false, false, true, false, nil)
	var aerr *amqp.Error
	if !errors.As(err, &aerr) || aerr.Code != amqp.ResourceLocked {
		t.Fatalf("declaring the exclusive queue from another connection: %v, want RESOURCE_LOCKED", err)
	}
	out := NewOutput(quiet)
	if err := out.Init(context.Background(), md); err != nil {
		t.Fatalf("output Init on an exclusive queue: %v", err)
	}
	defer out.Close()
	got := make(chan string, 1)
	stop := read(in, func(_ context.Context, ev *sdk.BindingEvent) ([]byte, error) {
		got <- string(ev.Data)
		return nil, nil
	})
	if _, err := out.Invoke(context.Background(), &sdk.InvokeRequest{Operation: "create", Data: []byte("mine")}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d != "mine" {
			t.Fatalf("got %q, want mine", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing read from the exclusive queue")
	}
	stop()
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	ch = b.channel()
	defer ch.Close()
	if _, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil); err == nil {
		t.Fatal("the exclusive queue outlived its connection")
	}
}

// TestUnackedRequeuedAcrossStreams: a delivery whose handler never finished
// before the stream ended comes again on the next Read.
func TestUnackedRequeuedAcrossStreams(t *testing.T) {
	b := newBroker(t)
	queue := b.queue("requeue")
	in := NewInput(quiet)
	if err := in.Init(context.Background(), sdk.Metadata{"host": rabbitURL, "queueName": queue, "durable": "false"}); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	b.publish(t, queue, amqp.Publishing{Body: []byte("m1"), MessageId: "id-1", Headers: amqp.Table{"k": "v"}})
	first := make(chan struct{}, 1)
	stop := read(in, func(ctx context.Context, _ *sdk.BindingEvent) ([]byte, error) {
		first <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	select {
	case <-first:
	case <-time.After(5 * time.Second):
		t.Fatal("first stream got nothing")
	}
	stop() // m1 in flight, never acknowledged
	second := make(chan *sdk.BindingEvent, 1)
	stop = read(in, func(_ context.Context, ev *sdk.BindingEvent) ([]byte, error) {
		second <- ev
		return nil, nil
	})
	defer stop()
	select {
	case ev := <-second:
		if string(ev.Data) != "m1" || ev.Metadata["messageId"] != "id-1" || ev.Metadata["k"] != "v" {
			t.Fatalf("second stream got %q %v, want m1 with messageId id-1 and header k=v", ev.Data, ev.Metadata)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unacknowledged message was not requeued")
	}
}

// TestDeclarationMismatch: a queue that exists with other flags fails Init
// with a message saying what to do.
func TestDeclarationMismatch(t *testing.T) {
	b := newBroker(t)
	queue := b.queue("mismatch")
	ch := b.channel()
	defer ch.Close()
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	err := NewInput(quiet).Init(context.Background(), sdk.Metadata{"host": rabbitURL, "queueName": queue, "durable": "true"})
	if err == nil || !strings.Contains(err.Error(), "match durable") {
		t.Fatalf("Init on a queue declared differently: %v, want an error with advice", err)
	}
}

func read(in *Input, h sdk.BindingHandler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = in.Read(ctx, h); close(done) }()
	return func() { cancel(); <-done }
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		md      sdk.Metadata
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{"minimal", sdk.Metadata{"host": rabbitURL, "queueName": "q"}, "", func(t *testing.T, c config) {
			if !c.queue.Durable || c.queue.AutoDelete || c.queue.Exclusive || !c.client.Single || c.client.TTL != 0 {
				t.Fatalf("defaults: %+v %+v", c.queue, c.client)
			}
		}},
		{"all", sdk.Metadata{"connectionString": rabbitURL, "queueName": "q", "durable": "false", "deleteWhenUnused": "true",
			"exclusive": "true", "ttlInSeconds": "30", "maxPriority": "9", "prefetchCount": "5", "concurrencyMode": "parallel"}, "",
			func(t *testing.T, c config) {
				q := c.queue
				if q.Durable || !q.AutoDelete || !q.Exclusive || q.MessageTTL != 30*time.Second || q.MaxPriority == nil || *q.MaxPriority != 9 ||
					c.client.PrefetchCount != 5 || c.client.Single || c.client.TTL != 0 {
					t.Fatalf("parsed %+v %+v", q, c.client)
				}
			}},
		{"no host", sdk.Metadata{"queueName": "q"}, "host", nil},
		{"no queue", sdk.Metadata{"host": rabbitURL}, "queueName", nil},
		{"not amqp", sdk.Metadata{"host": "http://h:1", "queueName": "q"}, "amqp", nil},
		{"bad durable", sdk.Metadata{"host": rabbitURL, "queueName": "q", "durable": "y"}, "durable", nil},
		{"bad deleteWhenUnused", sdk.Metadata{"host": rabbitURL, "queueName": "q", "deleteWhenUnused": "y"}, "deleteWhenUnused", nil},
		{"bad exclusive", sdk.Metadata{"host": rabbitURL, "queueName": "q", "exclusive": "y"}, "exclusive", nil},
		{"bad ttl", sdk.Metadata{"host": rabbitURL, "queueName": "q", "ttlInSeconds": "-3"}, "ttlInSeconds", nil},
		{"bad priority", sdk.Metadata{"host": rabbitURL, "queueName": "q", "maxPriority": "300"}, "maxPriority", nil},
		{"bad prefetch", sdk.Metadata{"host": rabbitURL, "queueName": "q", "prefetchCount": "-1"}, "prefetchCount", nil},
		{"bad reconnectWait", sdk.Metadata{"host": rabbitURL, "queueName": "q", "reconnectWait": "later"}, "reconnectWait", nil},
		{"client cert", sdk.Metadata{"host": rabbitURL, "queueName": "q", "clientCert": "pem"}, "clientCert", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(tc.md)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("want an error naming %s, got %v", tc.wantErr, err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestInitErrors(t *testing.T) {
	newBroker(t)
	for name, md := range map[string]sdk.Metadata{
		"wrong password": {"host": "amqp://guest:nope@" + rabbitAddr, "queueName": "q"},
		"unreachable":    {"host": "amqp://guest:guest@127.0.0.1:1", "queueName": "q"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := NewInput(quiet).Init(ctx, md); err == nil {
				t.Fatal("input Init succeeded")
			}
			if err := NewOutput(quiet).Init(ctx, md); err == nil {
				t.Fatal("output Init succeeded")
			}
		})
	}
}
