package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"google.golang.org/grpc/codes"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const mqttURL = "tcp://127.0.0.1:1883"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func needMosquitto(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:1883", 2*time.Second)
	if err != nil {
		t.Fatalf("Mosquitto is not reachable at 127.0.0.1:1883 (%v); start it with:\n\tmosquitto -d -p 1883", err)
	}
	_ = c.Close()
}

// publisher is an independent MQTT client for triggering and observing.
func publisher(t *testing.T, onMsg func(*paho.Publish), topics ...string) *autopaho.ConnectionManager {
	t.Helper()
	u, _ := url.Parse("mqtt://127.0.0.1:1883")
	cfg := autopaho.ClientConfig{ServerUrls: []*url.URL{u}, KeepAlive: 20, ConnectTimeout: 5 * time.Second,
		CleanStartOnInitialConnection: true,
		ClientConfig:                  paho.ClientConfig{ClientID: "test-" + strings.ReplaceAll(t.Name(), "/", "-") + time.Now().Format("150405.000")}}
	if onMsg != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) { onMsg(pr.Packet); return true, nil }}
	}
	cm, err := autopaho.NewConnection(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cm.AwaitConnection(ctx); err != nil {
		t.Fatalf("test client: %v", err)
	}
	for _, tp := range topics {
		if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: tp, QoS: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = cm.Disconnect(context.Background()) })
	return cm
}

func TestInputConformance(t *testing.T) {
	needMosquitto(t)
	topic := "outrigger/conformance/in/" + time.Now().Format("150405.000000")
	pub := publisher(t, nil)
	sdktest.ExerciseInputBinding(t, func() sdk.InputBinding { return NewInput(quiet) }, sdktest.InputBindingCase{
		Metadata:    sdk.Metadata{"url": mqttURL, "topic": topic, "consumerID": "conf-in-" + time.Now().Format("150405.000000"), "backOffMaxRetries": "3"},
		BadMetadata: sdk.Metadata{"url": mqttURL},
		Trigger: func(t *testing.T, token string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := pub.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(token)}); err != nil {
				t.Fatalf("publish: %v", err)
			}
		},
		Redelivers: true,
		Within:     10 * time.Second,
	})
}

func TestOutputConformance(t *testing.T) {
	needMosquitto(t)
	topic := "outrigger/conformance/out/" + time.Now().Format("150405.000000")
	got := make(chan *paho.Publish, 10)
	publisher(t, func(p *paho.Publish) { got <- p }, topic, topic+"/other")
	expect := func(wantTopic, wantData string) func(*testing.T, *sdk.InvokeResponse) {
		return func(t *testing.T, _ *sdk.InvokeResponse) {
			select {
			case p := <-got:
				if p.Topic != wantTopic || string(p.Payload) != wantData {
					t.Fatalf("subscriber got %s %q, want %s %q", p.Topic, p.Payload, wantTopic, wantData)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("nothing published within 5s")
			}
		}
	}
	sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return NewOutput(quiet) }, sdktest.OutputBindingCase{
		Metadata:    sdk.Metadata{"url": mqttURL, "topic": topic},
		BadMetadata: sdk.Metadata{"url": "tcp://127.0.0.1:1", "topic": topic},
		Operations:  []string{"create"},
		Calls: []sdktest.OutputCall{
			{Name: "create", Operation: "create", Data: []byte(`{"a":1}`), Check: expect(topic, `{"a":1}`)},
			{Name: "topic override", Operation: "create", Data: []byte("x"), Metadata: map[string]string{"topic": topic + "/other"}, Check: expect(topic+"/other", "x")},
			{Name: "bad retain", Operation: "create", Metadata: map[string]string{"retain": "maybe"}, WantCode: codes.InvalidArgument},
		},
	})
}

// TestUnackedRedeliveredAcrossStreams: a message whose handler never
// finished before the stream ended comes again on the next Read.
func TestUnackedRedeliveredAcrossStreams(t *testing.T) {
	needMosquitto(t)
	topic := "outrigger/redeliver/" + time.Now().Format("150405.000000")
	in := NewInput(quiet)
	if err := in.Init(context.Background(), sdk.Metadata{"url": mqttURL, "topic": topic, "consumerID": "redeliver-" + time.Now().Format("150405.000000")}); err != nil {
		t.Fatal(err)
	}
	pub := publisher(t, nil)
	read := func(h sdk.BindingHandler) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = in.Read(ctx, h); close(done) }()
		return func() { cancel(); <-done }
	}
	first := make(chan string, 10)
	block := make(chan struct{})
	stop := read(func(ctx context.Context, ev *sdk.BindingEvent) ([]byte, error) {
		first <- string(ev.Data)
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil, ctx.Err()
	})
	deadline := time.After(10 * time.Second)
	for got := false; !got; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = pub.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte("m1")})
		cancel()
		select {
		case <-first:
			got = true
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatal("first stream got nothing")
		}
	}
	stop() // m1 in flight, never acknowledged
	second := make(chan string, 10)
	stop = read(func(_ context.Context, ev *sdk.BindingEvent) ([]byte, error) {
		second <- string(ev.Data)
		return nil, nil
	})
	defer stop()
	select {
	case d := <-second:
		if d != "m1" {
			t.Fatalf("second stream got %q first, want the unacknowledged m1", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the unacknowledged message was not redelivered")
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		md      sdk.Metadata
		wantErr string
	}{
		{"minimal", sdk.Metadata{"url": mqttURL, "topic": "t"}, ""},
		{"no url", sdk.Metadata{"topic": "t"}, "url"},
		{"bad scheme", sdk.Metadata{"url": "http://h:1", "topic": "t"}, "scheme"},
		{"no topic", sdk.Metadata{"url": mqttURL}, "topic"},
		{"bad qos", sdk.Metadata{"url": mqttURL, "topic": "t", "qos": "3"}, "qos"},
		{"bad retain", sdk.Metadata{"url": mqttURL, "topic": "t", "retain": "y"}, "retain"},
		{"bad retries", sdk.Metadata{"url": mqttURL, "topic": "t", "backOffMaxRetries": "x"}, "backOffMaxRetries"},
		{"bad ca", sdk.Metadata{"url": mqttURL, "topic": "t", "caCert": "nope"}, "caCert"},
		{"cert without key", sdk.Metadata{"url": mqttURL, "topic": "t", "clientCert": "c"}, "clientKey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.md)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("want an error naming %s, got %v", tc.wantErr, err)
			}
		})
	}
}
