package pubsub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/resources"
)

// testApp is a real HTTP app: it records what it receives and answers with
// the reply its handler picks per path.
type testApp struct {
	mu       sync.Mutex
	got      map[string][]recorded // path → requests
	subs     string                // GET /dapr/subscribe answer ("" = 404)
	subCalls int
	reply    func(path string, n int) (int, string) // n = deliveries so far on path (1-based)
}

type recorded struct {
	header http.Header
	body   []byte
}

func (ta *testApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/dapr/subscribe" {
		ta.mu.Lock()
		ta.subCalls++
		s := ta.subs
		ta.mu.Unlock()
		if s == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(s))
		return
	}
	b, _ := io.ReadAll(r.Body)
	ta.mu.Lock()
	if ta.got == nil {
		ta.got = map[string][]recorded{}
	}
	ta.got[r.URL.Path] = append(ta.got[r.URL.Path], recorded{r.Header.Clone(), b})
	n := len(ta.got[r.URL.Path])
	ta.mu.Unlock()
	code, body := 200, ""
	if ta.reply != nil {
		code, body = ta.reply(r.URL.Path, n)
	}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

func (ta *testApp) on(path string) []recorded {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return append([]recorded(nil), ta.got[path]...)
}

// fastRetrier keeps the tests quick: 3 retries 10 ms apart.
var fastRetrier = ConstantRetrier{Interval: 10 * time.Millisecond, MaxRetries: 3}

// startHTTP runs the block with an HTTP app and the given declarative
// subscriptions, publishing through the block itself.
func startHTTP(t *testing.T, ta *testApp, decl []resources.Subscription) (*API, *memBroker) {
	t.Helper()
	srv := httptest.NewServer(ta)
	t.Cleanup(srv.Close)
	mb := newMemBroker()
	conn := mb.serve(t)
	a := New(Config{AppID: "sub", Brokers: testBrokers{"ps": {Name: "ps", Conn: conn}}, Declarative: decl,
		App: appchannel.NewHTTP(strings.TrimPrefix(srv.URL, "http://"), "", 0), Retrier: fastRetrier})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return a, mb
}

func publishJSON(t *testing.T, a *API, topic, data string, md map[string]string) {
	t.Helper()
	if _, err := a.PublishEvent(context.Background(), &runtimev1.PublishEventRequest{PubsubName: "ps", Topic: topic,
		Data: []byte(data), DataContentType: "application/json", Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPDelivery(t *testing.T) {
	ta := &testApp{reply: func(path string, n int) (int, string) {
		switch path {
		case "/retry":
			if n < 3 {
				return 200, `{"status":"RETRY"}`
			}
			return 200, `{"status":"SUCCESS"}`
		case "/drop":
			return 200, `{"status":"DROP"}`
		case "/missing":
			return 404, "no such route"
		case "/fail":
			return 500, "boom"
		}
		return 200, ""
	}}
	decl := []resources.Subscription{
		{Name: "ok", PubsubName: "ps", Topic: "ok", Routes: resources.Routes{Default: "/ok"}},
		{Name: "retry", PubsubName: "ps", Topic: "retry", Routes: resources.Routes{Default: "/retry"}},
		{Name: "drop", PubsubName: "ps", Topic: "drop", Routes: resources.Routes{Default: "/drop"}, DeadLetterTopic: "dlq"},
		{Name: "missing", PubsubName: "ps", Topic: "missing", Routes: resources.Routes{Default: "/missing"}, DeadLetterTopic: "dlq404"},
		{Name: "fail", PubsubName: "ps", Topic: "fail", Routes: resources.Routes{Default: "/fail"}, DeadLetterTopic: "faildlq"},
		{Name: "other-app", PubsubName: "ps", Topic: "ok2", Routes: resources.Routes{Default: "/ok"}, Scopes: []string{"someone-else"}},
	}
	a, mb := startHTTP(t, ta, decl)

	publishJSON(t, a, "ok", `{"id":7}`, map[string]string{"partitionKey": "pk"})
	eventually(t, "delivery on /ok", func() bool { return len(ta.on("/ok")) == 1 })
	r := ta.on("/ok")[0]
	if r.header.Get("Content-Type") != "application/cloudevents+json" || r.header.Get("Pubsubname") != "ps" || r.header.Get("Partitionkey") != "pk" {
		t.Errorf("headers %v", r.header)
	}
	var ce map[string]any
	if err := json.Unmarshal(r.body, &ce); err != nil || ce["topic"] != "ok" || ce["source"] != "sub" {
		t.Errorf("event %s (%v)", r.body, err)
	}

	publishJSON(t, a, "retry", `{}`, nil)
	eventually(t, "RETRY then SUCCESS", func() bool { return len(ta.on("/retry")) == 3 })

	publishJSON(t, a, "drop", `{"d":1}`, nil)
	eventually(t, "DROP to the dead-letter topic", func() bool { return len(mb.publishedOn("dlq")) == 1 })
	if string(mb.publishedOn("dlq")[0]) != string(mb.publishedOn("drop")[0]) {
		t.Errorf("dead letter is not the original message:\n%s\n%s", mb.publishedOn("dlq")[0], mb.publishedOn("drop")[0])
	}

	publishJSON(t, a, "missing", `{}`, nil)
	eventually(t, "404 delivery", func() bool { return len(ta.on("/missing")) == 1 })

	publishJSON(t, a, "fail", `{}`, nil)
	eventually(t, "retries exhausted to the dead-letter topic", func() bool { return len(mb.publishedOn("faildlq")) == 1 })
	if n := len(ta.on("/fail")); n != 4 {
		t.Errorf("500 delivered %d times, want 4 (1 + 3 retries)", n)
	}

	publishJSON(t, a, "ok2", `{}`, nil) // subscription scoped to another app
	eventually(t, "all acked", func() bool { acks, _ := mb.counts(); return acks >= 5 })
	if len(mb.publishedOn("dlq404")) != 0 {
		t.Error("404 went to the dead-letter topic")
	}
	if len(ta.on("/ok")) != 1 {
		t.Error("a subscription scoped to another app was delivered")
	}
	subs := a.Subscriptions()
	if len(subs) != 5 || subs[0].GetType() != runtimev1.PubsubSubscriptionType_DECLARATIVE || subs[0].GetRules().GetRules()[0].GetPath() != "/ok" {
		t.Errorf("metadata subscriptions: %v", subs)
	}
}

func TestNackRedelivers(t *testing.T) {
	var mu sync.Mutex
	fail := true
	ta := &testApp{reply: func(string, int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return 503, "later"
		}
		return 200, ""
	}}
	a, mb := startHTTP(t, ta, []resources.Subscription{{Name: "n", PubsubName: "ps", Topic: "n", Routes: resources.Routes{Default: "/n"}}})
	publishJSON(t, a, "n", `{}`, nil)
	eventually(t, "a nack", func() bool { _, n := mb.counts(); return n >= 1 })
	mu.Lock()
	fail = false
	mu.Unlock()
	eventually(t, "redelivery acked", func() bool { acks, _ := mb.counts(); return acks == 1 })
}

func TestRoutingAndRawAndExpiry(t *testing.T) {
	ta := &testApp{}
	decl := []resources.Subscription{
		{Name: "r", PubsubName: "ps", Topic: "orders", DeadLetterTopic: "unrouted", Routes: resources.Routes{Rules: []resources.Rule{
			{Match: `event.type == "order.created"`, Path: "/created"},
			{Match: `event.data.amount > 1000`, Path: "/big"},
		}}},
		{Name: "d", PubsubName: "ps", Topic: "orders2", Routes: resources.Routes{Rules: []resources.Rule{{Match: `event.data.amount > 1000`, Path: "/big"}}, Default: "/small"}},
		{Name: "raw", PubsubName: "ps", Topic: "raw", Routes: resources.Routes{Default: "/raw"}, Metadata: map[string]string{"rawPayload": "true"}},
		{Name: "exp", PubsubName: "ps", Topic: "exp", Routes: resources.Routes{Default: "/exp"}, DeadLetterTopic: "expired"},
	}
	a, mb := startHTTP(t, ta, decl)
	publishJSON(t, a, "orders", `{"amount":5}`, map[string]string{"cloudevent.type": "order.created"})
	publishJSON(t, a, "orders", `{"amount":5000}`, nil)
	publishJSON(t, a, "orders", `{"amount":5}`, nil) // matches nothing, no default → dead letter
	publishJSON(t, a, "orders2", `{"amount":5}`, nil)
	publishJSON(t, a, "orders2", `{"amount":2000}`, nil)
	eventually(t, "routed deliveries", func() bool {
		return len(ta.on("/created")) == 1 && len(ta.on("/big")) == 2 && len(ta.on("/small")) == 1 && len(mb.publishedOn("unrouted")) == 1
	})

	if _, err := a.PublishEvent(context.Background(), &runtimev1.PublishEventRequest{PubsubName: "ps", Topic: "raw", Data: []byte{0xff, 0x00},
		Metadata: map[string]string{"rawPayload": "true"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "raw delivery", func() bool { return len(ta.on("/raw")) == 1 })
	var ce map[string]any
	_ = json.Unmarshal(ta.on("/raw")[0].body, &ce)
	if ce["data_base64"] != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00}) || ce["source"] != "Dapr" || ce["datacontenttype"] != "application/octet-stream" {
		t.Errorf("raw event %v", ce)
	}

	// An event that expired in the broker is dropped (to the dead letter).
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if err := mb.put("exp", []byte(`{"id":"e1","specversion":"1.0","type":"t","source":"s","expiration":"`+past+`"}`), nil, "application/cloudevents+json"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "expired event dead-lettered", func() bool { return len(mb.publishedOn("expired")) == 1 })
	if len(ta.on("/exp")) != 0 {
		t.Error("expired event delivered")
	}
}

func TestProgrammaticHTTPAndBulkSubscribe(t *testing.T) {
	ta := &testApp{subs: `[
		{"pubsubname":"ps","topic":"p1","route":"/p1"},
		{"pubsubname":"ps","topic":"p2","routes":{"rules":[{"match":"event.data.x == 1","path":"/x1"}],"default":"/p2"}},
		{"pubsubname":"ps","topic":"bulk","route":"/bulk","bulkSubscribe":{"enabled":true,"maxMessagesCount":3,"maxAwaitDurationMs":50}},
		{"pubsubname":"nope","topic":"t","route":"/t"},
		{"pubsubname":"ps","topic":"noroute"}
	]`}
	ta.reply = func(path string, n int) (int, string) {
		if path != "/bulk" {
			return 200, ""
		}
		ta.mu.Lock()
		body := ta.got["/bulk"][n-1].body
		ta.mu.Unlock()
		var env struct{ Entries []struct{ EntryID string } }
		_ = json.Unmarshal(body, &env)
		var st []string
		for _, e := range env.Entries {
			st = append(st, `{"entryId":"`+e.EntryID+`","status":"SUCCESS"}`)
		}
		return 200, `{"statuses":[` + strings.Join(st, ",") + `]}`
	}
	a, mb := startHTTP(t, ta, nil)
	subs := a.Subscriptions()
	if len(subs) != 3 || subs[0].GetType() != runtimev1.PubsubSubscriptionType_PROGRAMMATIC {
		t.Fatalf("subscriptions %v", subs)
	}
	publishJSON(t, a, "p1", `{}`, nil)
	publishJSON(t, a, "p2", `{"x":1}`, nil)
	for i := 0; i < 3; i++ {
		publishJSON(t, a, "bulk", `{"i":1}`, nil)
	}
	eventually(t, "programmatic deliveries", func() bool { return len(ta.on("/p1")) == 1 && len(ta.on("/x1")) == 1 })
	eventually(t, "one bulk call", func() bool { return len(ta.on("/bulk")) >= 1 })
	var env struct {
		Entries []struct {
			EntryID string
			Event   map[string]any
		}
		Topic, Pubsubname, Type string
	}
	_ = json.Unmarshal(ta.on("/bulk")[0].body, &env)
	if len(env.Entries) != 3 || env.Topic != "bulk" || env.Pubsubname != "ps" || env.Entries[0].Event["topic"] != "bulk" {
		t.Errorf("bulk envelope %s", ta.on("/bulk")[0].body)
	}
	eventually(t, "bulk entries acked", func() bool { acks, _ := mb.counts(); return acks == 5 })
}

// The gRPC app channel must keep satisfying these (a signature change there
// would otherwise silently turn gRPC apps into HTTP ones).
var (
	_ grpcApp    = (*appchannel.GRPCChannel)(nil)
	_ appTokener = (*appchannel.GRPCChannel)(nil)
	_ AppChannel = (*appchannel.HTTPChannel)(nil)
)

// grpcTestApp is a real gRPC app.
type grpcTestApp struct {
	runtimev1.UnimplementedAppCallbackServer
	mu     sync.Mutex
	events []*runtimev1.TopicEventRequest
}

func (g *grpcTestApp) ListTopicSubscriptions(context.Context, *emptypb.Empty) (*runtimev1.ListTopicSubscriptionsResponse, error) {
	return &runtimev1.ListTopicSubscriptionsResponse{Subscriptions: []*runtimev1.TopicSubscription{
		{PubsubName: "ps", Topic: "g", Routes: &runtimev1.TopicRoutes{Default: "/g"}},
	}}, nil
}

func (g *grpcTestApp) OnTopicEvent(_ context.Context, in *runtimev1.TopicEventRequest) (*runtimev1.TopicEventResponse, error) {
	if in.GetPath() == "/u" {
		return nil, status.Error(codes.Unimplemented, "no handler")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.events = append(g.events, in)
	return &runtimev1.TopicEventResponse{}, nil
}

func TestGRPCAppDelivery(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &grpcTestApp{}
	s := grpc.NewServer()
	runtimev1.RegisterAppCallbackServer(s, app)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	ch, err := appchannel.NewGRPC(lis.Addr().String(), "")
	if err != nil {
		t.Fatal(err)
	}
	mb := newMemBroker()
	a := New(Config{AppID: "gapp", Brokers: testBrokers{"ps": {Name: "ps", Conn: mb.serve(t)}}, App: ch, Retrier: fastRetrier,
		Declarative: []resources.Subscription{{Name: "unimpl", PubsubName: "ps", Topic: "u", Routes: resources.Routes{Default: "/u"}}}})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	publishJSON(t, a, "g", `{"hello":"world"}`, nil)
	eventually(t, "OnTopicEvent", func() bool { app.mu.Lock(); defer app.mu.Unlock(); return len(app.events) == 1 })
	ev := app.events[0]
	if ev.GetTopic() != "g" || ev.GetPubsubName() != "ps" || ev.GetPath() != "/g" || ev.GetSource() != "gapp" || ev.GetSpecVersion() != "1.0" ||
		ev.GetDataContentType() != "application/json" || string(ev.GetData()) != `{"hello":"world"}` || ev.GetId() == "" {
		t.Errorf("event %v", ev)
	}
	if ev.GetExtensions().GetFields()["topic"].GetStringValue() != "g" {
		t.Errorf("extensions %v", ev.GetExtensions())
	}
	// Unimplemented = drop: acked, not retried.
	publishJSON(t, a, "u", `{}`, nil)
	eventually(t, "Unimplemented acked", func() bool { acks, nacks := mb.counts(); return acks == 2 && nacks == 0 })
}
