package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// cluster starts franz-go's in-process Kafka (kfake): three brokers, topics
// created on first use with three partitions.
func cluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// fast is consumer metadata that keeps group joins and commits quick.
func fast(md sdk.Metadata) sdk.Metadata {
	out := sdk.Metadata{"initialOffset": "oldest", "heartbeatInterval": "100ms", "sessionTimeout": "6s",
		"consumeRetryInterval": "50ms", "commitInterval": "100ms"}
	for k, v := range md {
		out[k] = v
	}
	return out
}

// producer is an independent client for triggering.
func producer(t *testing.T, addr string) func(t *testing.T, r *kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return func(t *testing.T, r *kgo.Record) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", r.Topic, err)
		}
	}
}

// tail reads topic from its start, outside any group.
type tail struct {
	cl   *kgo.Client
	mu   sync.Mutex
	seen []*kgo.Record
}

func newTail(t *testing.T, addr, topic string) *tail {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation(), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &tail{cl: cl}
}

// next returns the next record produced to the topic.
func (tl *tail) next(t *testing.T) *kgo.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(tl.seen) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no record within 10s")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		tl.cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { tl.seen = append(tl.seen, r) })
		cancel()
	}
	r := tl.seen[0]
	tl.seen = tl.seen[1:]
	return r
}

func headers(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestInputConformance(t *testing.T) {
	addr := cluster(t)
	produce := producer(t, addr)
	sdktest.ExerciseInputBinding(t, func() sdk.InputBinding { return NewInput(quiet) }, sdktest.InputBindingCase{
		Metadata:    fast(sdk.Metadata{"brokers": addr, "topics": "conf-a, conf-b", "consumerGroup": "conformance"}),
		BadMetadata: sdk.Metadata{"topics": "conf-a", "consumerGroup": "conformance"},
		Trigger: func(t *testing.T, token string) {
			produce(t, &kgo.Record{Topic: "conf-a", Value: []byte(token)})
		},
		Redelivers: true,
		Within:     15 * time.Second,
	})
}

func TestOutputConformance(t *testing.T) {
	addr := cluster(t)
	tl := newTail(t, addr, "out")
	expect := func(check func(t *testing.T, r *kgo.Record)) func(*testing.T, *sdk.InvokeResponse) {
		return func(t *testing.T, _ *sdk.InvokeResponse) { check(t, tl.next(t)) }
	}
	sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return NewOutput(quiet) }, sdktest.OutputBindingCase{
		Metadata:    sdk.Metadata{"brokers": addr, "publishTopic": "out"},
		BadMetadata: sdk.Metadata{"brokers": addr, "publishTopic": "out", "authType": "oidc"},
		Operations:  []string{"create"},
		Calls: []sdktest.OutputCall{
			{Name: "create", Operation: "create", Data: []byte(`{"a":1}`), Check: expect(func(t *testing.T, r *kgo.Record) {
				if string(r.Value) != `{"a":1}` || r.Key != nil || len(r.Headers) != 0 {
					t.Fatalf("record %q key %q headers %v, want the data, no key, no headers", r.Value, r.Key, headers(r))
				}
			})},
			{Name: "key and headers", Operation: "create", Data: []byte("x"),
				Metadata: map[string]string{"partitionKey": "order-7", "traceparent": "00-abc-def-01"},
				Check: expect(func(t *testing.T, r *kgo.Record) {
					h := headers(r)
					if string(r.Key) != "order-7" || h["traceparent"] != "00-abc-def-01" || h["partitionKey"] != "" {
						t.Fatalf("record key %q headers %v, want key order-7 and the traceparent header", r.Key, h)
					}
				})},
			{Name: "key alias", Operation: "create", Data: []byte("y"), Metadata: map[string]string{"key": "k2"},
				Check: expect(func(t *testing.T, r *kgo.Record) {
					if string(r.Key) != "k2" {
						t.Fatalf("record key %q, want k2", r.Key)
					}
				})},
		},
	})
}

// TestInputEventMetadata: every topic of topics is read, and events carry
// Dapr's __key, __topic, __partition, __offset, __timestamp and the headers.
func TestInputEventMetadata(t *testing.T) {
	addr := cluster(t)
	produce := producer(t, addr)
	in := NewInput(quiet)
	if err := in.Init(context.Background(), fast(sdk.Metadata{"brokers": addr, "topics": "m-a,m-b", "consumerGroup": "meta"})); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	got := make(chan *sdk.BindingEvent, 10)
	stop := read(in, func(_ context.Context, ev *sdk.BindingEvent) ([]byte, error) { got <- ev; return nil, nil })
	defer stop()
	produce(t, &kgo.Record{Topic: "m-a", Key: []byte("k1"), Value: []byte("one"),
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}, {Key: "content-type", Value: []byte("text/plain")}}})
	produce(t, &kgo.Record{Topic: "m-b", Value: []byte("two")})
	byTopic := map[string]*sdk.BindingEvent{}
	for len(byTopic) < 2 {
		select {
		case ev := <-got:
			byTopic[ev.Metadata["__topic"]] = ev
		case <-time.After(15 * time.Second):
			t.Fatalf("events from %d of 2 topics within 15s", len(byTopic))
		}
	}
	a, b := byTopic["m-a"], byTopic["m-b"]
	if a == nil || b == nil {
		t.Fatalf("events by topic: %v", byTopic)
	}
	if string(a.Data) != "one" || a.ContentType != "text/plain" || a.Metadata["__key"] != "k1" || a.Metadata["h"] != "v" ||
		a.Metadata["__partition"] == "" || a.Metadata["__offset"] != "0" || a.Metadata["__timestamp"] == "" {
		t.Fatalf("event from m-a: %q %q %v", a.Data, a.ContentType, a.Metadata)
	}
	if _, ok := b.Metadata["__key"]; ok || string(b.Data) != "two" {
		t.Fatalf("event from m-b: %q %v (no key expected)", b.Data, b.Metadata)
	}
}

// TestUnackedReadAgainAcrossStreams: a record whose handler never finished
// before the stream ended is read again by the next stream, and an
// acknowledged one is not.
func TestUnackedReadAgainAcrossStreams(t *testing.T) {
	addr := cluster(t)
	produce := producer(t, addr)
	in := NewInput(quiet)
	if err := in.Init(context.Background(), fast(sdk.Metadata{"brokers": addr, "topics": "redo", "consumerGroup": "redo"})); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// One key: both records land on one partition, in order.
	produce(t, &kgo.Record{Topic: "redo", Key: []byte("k"), Value: []byte("m1")})
	produce(t, &kgo.Record{Topic: "redo", Key: []byte("k"), Value: []byte("m2")})
	first := make(chan string, 10)
	stop := read(in, func(ctx context.Context, ev *sdk.BindingEvent) ([]byte, error) {
		first <- string(ev.Data)
		if string(ev.Data) == "m1" {
			return nil, nil
		}
		<-ctx.Done() // m2 stays in flight
		return nil, ctx.Err()
	})
	for _, want := range []string{"m1", "m2"} {
		select {
		case d := <-first:
			if d != want {
				t.Fatalf("first stream got %q, want %q", d, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("first stream did not get %s", want)
		}
	}
	stop()
	second := make(chan string, 10)
	stop = read(in, func(_ context.Context, ev *sdk.BindingEvent) ([]byte, error) {
		second <- string(ev.Data)
		return nil, nil
	})
	defer stop()
	select {
	case d := <-second:
		if d != "m2" {
			t.Fatalf("second stream got %q first, want the unacknowledged m2 (m1 was committed)", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the unacknowledged record was not read again")
	}
}

func TestMissingDirectionMetadata(t *testing.T) {
	addr := cluster(t)
	t.Run("output without publishTopic", func(t *testing.T) {
		out := NewOutput(quiet)
		if err := out.Init(context.Background(), sdk.Metadata{"brokers": addr, "topics": "x"}); err != nil {
			t.Fatalf("Init of an input-only component's output side: %v", err)
		}
		defer out.Close()
		if _, err := out.Invoke(context.Background(), &sdk.InvokeRequest{Operation: "create"}); err == nil || !strings.Contains(err.Error(), "publishTopic") {
			t.Fatalf("create without publishTopic: %v, want an error naming publishTopic", err)
		}
	})
	for name, md := range map[string]sdk.Metadata{
		"topics":        {"brokers": addr, "publishTopic": "x", "consumerGroup": "g"},
		"consumerGroup": {"brokers": addr, "topics": "x"},
	} {
		t.Run("input without "+name, func(t *testing.T) {
			in := NewInput(quiet)
			if err := in.Init(context.Background(), md); err != nil {
				t.Fatalf("Init: %v", err)
			}
			defer in.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := in.Read(ctx, func(context.Context, *sdk.BindingEvent) ([]byte, error) { return nil, nil })
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("Read: %v, want an error naming %s", err, name)
			}
		})
	}
}

func TestInitErrors(t *testing.T) {
	addr := cluster(t)
	for name, md := range map[string]sdk.Metadata{
		"no brokers":            {"topics": "t"},
		"bad auth type":         {"brokers": addr, "authType": "oidc"},
		"password without user": {"brokers": addr, "authType": "password"},
		"bad initial offset":    {"brokers": addr, "initialOffset": "middle"},
		"bad duration":          {"brokers": addr, "sessionTimeout": "soon"},
		"two publish topics":    {"brokers": addr, "publishTopic": "a,b"},
		"unreachable":           {"brokers": "127.0.0.1:1", "dialTimeout": "200ms"},
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

func read(in *Input, h sdk.BindingHandler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = in.Read(ctx, h); close(done) }()
	return func() { cancel(); <-done }
}
