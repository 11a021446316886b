package bindings_test

import (
	"context"
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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/bindings"
)

// backend records what the bindings.http plugin sends it.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, body, traceparent, header string
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, recorded{r.Method, r.URL.Path, string(body), r.Header.Get("traceparent"), r.Header.Get("X-Custom")})
		b.mu.Unlock()
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusOK)
		case "/missing":
			http.NotFound(w, r)
		default:
			w.Header().Set("X-Answer", "yes")
			_, _ = io.WriteString(w, `{"got":"`+r.Method+` `+r.URL.Path+`"}`)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) last(t *testing.T) recorded {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.reqs) == 0 {
		t.Fatal("the backend got no request")
	}
	return b.reqs[len(b.reqs)-1]
}

func outputAPI(t *testing.T) (*bindings.API, *backend, string) {
	be := newBackend(t)
	api := bindings.New(bindings.Config{AppID: "app", Bindings: table{
		"api":  initOutput(t, httpConn, "api", map[string]string{"url": be.URL}),
		"tick": initInput(t, cronConn, "tick", map[string]string{"schedule": "@every 1h"}),
	}})
	mux := http.NewServeMux()
	api.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return api, be, srv.URL
}

func TestOutputHTTP(t *testing.T) {
	_, be, base := outputAPI(t)
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, tc := range []struct {
		name, method, binding, body string
		wantStatus                  int
		wantBody, wantCode          string
		wantSent                    *recorded
	}{
		{name: "get", method: "POST", binding: "api", body: `{"operation":"get","metadata":{"path":"orders/7","X-Custom":"c"}}`,
			wantStatus: 200, wantBody: `{"got":"GET /orders/7"}`, wantSent: &recorded{method: "GET", path: "/orders/7", traceparent: tp, header: "c"}},
		{name: "put verb, string data keeps its quotes", method: "PUT", binding: "api", body: `{"operation":"post","data":"hi"}`,
			wantStatus: 200, wantSent: &recorded{method: "POST", path: "/", body: `"hi"`, traceparent: tp}},
		{name: "object data", method: "POST", binding: "api", body: `{"operation":"create","data":{"a": 1}}`,
			wantStatus: 200, wantSent: &recorded{method: "POST", path: "/", body: `{"a":1}`, traceparent: tp}},
		{name: "empty answer is 204", method: "POST", binding: "api", body: `{"operation":"get","metadata":{"path":"empty"}}`, wantStatus: 204},
		{name: "binding error", method: "POST", binding: "api", body: `{"operation":"get","metadata":{"path":"missing"}}`,
			wantStatus: 500, wantCode: "ERR_INVOKE_OUTPUT_BINDING", wantBody: "received status code 404"},
		{name: "unknown binding", method: "POST", binding: "nope", body: `{"operation":"get"}`,
			wantStatus: 500, wantCode: "ERR_INVOKE_OUTPUT_BINDING", wantBody: "couldn't find output binding nope"},
		{name: "input-only binding", method: "POST", binding: "tick", body: `{"operation":"get"}`,
			wantStatus: 500, wantCode: "ERR_INVOKE_OUTPUT_BINDING", wantBody: "couldn't find output binding tick"},
		{name: "no operation", method: "POST", binding: "api", body: `{"data":1}`,
			wantStatus: 500, wantCode: "ERR_INVOKE_OUTPUT_BINDING", wantBody: "operation field is missing"},
		{name: "unsupported operation", method: "POST", binding: "api", body: `{"operation":"frobnicate"}`,
			wantStatus: 500, wantCode: "ERR_INVOKE_OUTPUT_BINDING", wantBody: "does not support operation frobnicate"},
		{name: "malformed body", method: "POST", binding: "api", body: `{"operation":`, wantStatus: 400, wantCode: "ERR_MALFORMED_REQUEST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+"/v1.0/bindings/"+tc.binding, strings.NewReader(tc.body))
			req.Header.Set("traceparent", tp)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantCode != "" {
				var e struct{ ErrorCode, Message string }
				if err := json.Unmarshal(body, &e); err != nil || e.ErrorCode != tc.wantCode {
					t.Fatalf("body %s, want errorCode %s", body, tc.wantCode)
				}
			}
			if tc.wantBody != "" && !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("body %s, want it to contain %s", body, tc.wantBody)
			}
			if resp.StatusCode == 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if resp.Header.Get("metadata.statusCode") != "200" || resp.Header.Get("metadata.X-Answer") != "yes" {
					t.Errorf("response metadata headers missing: %v", resp.Header)
				}
			}
			if tc.wantSent != nil {
				got := be.last(t)
				if got != *tc.wantSent {
					t.Fatalf("backend got %+v, want %+v", got, *tc.wantSent)
				}
			}
		})
	}
}

func TestInvokeBindingGRPC(t *testing.T) {
	api, be, _ := outputAPI(t)
	tp := "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", tp, "dapr-api-token", "secret"))
	resp, err := api.InvokeBinding(ctx, &runtimev1.InvokeBindingRequest{Name: "api", Operation: "post", Data: []byte("raw"),
		Metadata: map[string]string{"path": "g"}})
	if err != nil {
		t.Fatalf("InvokeBinding: %v", err)
	}
	if string(resp.GetData()) != `{"got":"POST /g"}` || resp.GetMetadata()["statusCode"] != "200" {
		t.Fatalf("answer %q %v", resp.GetData(), resp.GetMetadata())
	}
	if got := be.last(t); got.body != "raw" || got.traceparent != tp {
		t.Fatalf("backend got %+v (gRPC data is passed as is, with the caller's traceparent)", got)
	}
	_, err = api.InvokeBinding(context.Background(), &runtimev1.InvokeBindingRequest{Name: "nope", Operation: "get"})
	if status.Code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "error invoking output binding nope") {
		t.Fatalf("unknown binding: %v, want Internal error invoking output binding", err)
	}
}

// app is an HTTP test app recording binding events.
type app struct {
	*httptest.Server
	events chan appEvent
	answer func(path string) (int, string)
}

type appEvent struct {
	path, body, contentType string
	header                  http.Header
}

func newApp(t *testing.T, subscribed map[string]int, answer func(string) (int, string)) *app {
	a := &app{events: make(chan appEvent, 100), answer: answer}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			code, ok := subscribed[r.URL.Path]
			if !ok {
				code = http.StatusNotFound
			}
			w.WriteHeader(code)
			return
		}
		body, _ := io.ReadAll(r.Body)
		a.events <- appEvent{r.URL.Path, string(body), r.Header.Get("Content-Type"), r.Header.Clone()}
		code, ans := 200, ""
		if a.answer != nil {
			code, ans = a.answer(r.URL.Path)
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, ans)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *app) channel() *appchannel.HTTPChannel {
	return appchannel.NewHTTP(strings.TrimPrefix(a.URL, "http://"), "", 0)
}

func (a *app) next(t *testing.T, within time.Duration) appEvent {
	t.Helper()
	select {
	case ev := <-a.events:
		return ev
	case <-time.After(within):
		t.Fatalf("no event reached the app within %v", within)
		return appEvent{}
	}
}

func stop(t *testing.T, api *bindings.API) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := api.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// TestCronFiresToHTTPApp: the real cron plugin at @every 1s reaches the app
// at POST /<name> with its metadata as headers; a binding the app does not
// answer OPTIONS for is not read; direction: input skips the probe and
// route changes the path.
func TestCronFiresToHTTPApp(t *testing.T) {
	a := newApp(t, map[string]int{"/tick": 200, "/tock": 405}, nil)
	api := bindings.New(bindings.Config{AppID: "app", App: a.channel(), Bindings: table{
		"tick":     initInput(t, cronConn, "tick", map[string]string{"schedule": "@every 1s"}),
		"tock":     initInput(t, cronConn, "tock", map[string]string{"schedule": "* * * * * *"}),
		"ignored":  initInput(t, cronConn, "ignored", map[string]string{"schedule": "@every 1s"}),
		"declared": initInput(t, cronConn, "declared", map[string]string{"schedule": "@every 1s", "direction": "input", "route": "/jobs/run"}),
		"outonly":  initInput(t, cronConn, "outonly", map[string]string{"schedule": "@every 1s", "direction": "output"}),
	}})
	if err := api.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stop(t, api)
	seen := map[string]int{}
	deadline := time.Now().Add(4500 * time.Millisecond)
	for time.Now().Before(deadline) && (seen["/tick"] < 2 || seen["/tock"] < 2 || seen["/jobs/run"] < 2) {
		ev := a.next(t, 3*time.Second)
		seen[ev.path]++
		if ev.contentType != "application/json" || !strings.Contains(ev.header.Get("readTimeUTC"), "UTC") || ev.header.Get("timeZone") == "" {
			t.Errorf("event %s: content type %q, headers %v", ev.path, ev.contentType, ev.header)
		}
	}
	if seen["/tick"] < 2 || seen["/tock"] < 2 || seen["/jobs/run"] < 2 {
		t.Fatalf("events per path %v, want at least 2 each for /tick, /tock (405 probe) and /jobs/run", seen)
	}
	if seen["/ignored"] > 0 || seen["/outonly"] > 0 {
		t.Fatalf("events reached unsubscribed bindings: %v", seen)
	}
}

type recordingState struct {
	mu   sync.Mutex
	reqs []*runtimev1.SaveStateRequest
}

func (s *recordingState) SaveState(_ context.Context, in *runtimev1.SaveStateRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, in)
	return &emptypb.Empty{}, nil
}

func emit(t *testing.T, data string, md map[string]string) feedResult {
	t.Helper()
	ev := feedEvent{data: data, md: md, result: make(chan feedResult, 1)}
	feedEvents <- ev
	select {
	case r := <-ev.result:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not answered within 10s")
		return feedResult{}
	}
}

// TestAppAnswers: the app's non-2xx is a nack to the plugin; a 2xx body
// goes back as response data; {storeName, state, to, data} saves state and
// forwards data to an output binding.
func TestAppAnswers(t *testing.T) {
	be := newBackend(t)
	a := newApp(t, map[string]int{"/feed": 200}, func(string) (int, string) { return 200, "" })
	st := &recordingState{}
	api := bindings.New(bindings.Config{AppID: "app", App: a.channel(), State: st, Bindings: table{
		"feed": initInput(t, feedConn, "feed", map[string]string{}),
		"api":  initOutput(t, httpConn, "api", map[string]string{"url": be.URL}),
	}})
	if err := api.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stop(t, api)

	a.answer = func(string) (int, string) { return 500, "nope" }
	if r := emit(t, `{"n":1}`, map[string]string{"X-Id": "1"}); r.err == nil || !strings.Contains(r.err.Error(), "status code: 500") {
		t.Fatalf("a 500 from the app reached the plugin as %+v, want a nack naming the status", r)
	}
	ev := a.next(t, time.Second)
	if ev.path != "/feed" || ev.body != `{"n":1}` || ev.header.Get("X-Id") != "1" {
		t.Fatalf("app got %+v", ev)
	}

	a.answer = func(string) (int, string) { return 200, "thanks" }
	if r := emit(t, "2", nil); r.err != nil || string(r.body) != "thanks" {
		t.Fatalf("plugin got %+v, want the app's body", r)
	}
	a.next(t, time.Second)

	a.answer = func(string) (int, string) {
		return 200, `{"storeName":"store","state":[{"key":"k","value":{"a":1}}],"to":["api"],"data":{"fwd":true}}`
	}
	if r := emit(t, "3", nil); r.err != nil {
		t.Fatalf("plugin got %+v", r)
	}
	a.next(t, time.Second)
	st.mu.Lock()
	if len(st.reqs) != 1 || st.reqs[0].GetStoreName() != "store" || st.reqs[0].GetStates()[0].GetKey() != "k" ||
		string(st.reqs[0].GetStates()[0].GetValue()) != `{"a":1}` {
		t.Errorf("state saved: %v", st.reqs)
	}
	st.mu.Unlock()
	if got := be.last(t); got.method != "POST" || got.body != `{"fwd":true}` {
		t.Fatalf("forwarded %+v, want POST {\"fwd\":true}", got)
	}
}

// TestStopDrains: an event in flight when Stop starts is delivered and
// answered before Stop returns; events after that are nacked.
func TestStopDrains(t *testing.T) {
	release := make(chan struct{})
	a := newApp(t, map[string]int{"/feed": 200}, func(string) (int, string) { <-release; return 200, "done" })
	api := bindings.New(bindings.Config{AppID: "app", App: a.channel(), Bindings: table{"feed": initInput(t, feedConn, "feed", nil)}})
	if err := api.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := feedEvent{data: "slow", result: make(chan feedResult, 1)}
	feedEvents <- ev
	a.next(t, 5*time.Second) // in flight now
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- api.Stop(ctx)
	}()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a delivery was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case r := <-ev.result:
		if r.err != nil || string(r.body) != "done" {
			t.Fatalf("in-flight event answered %+v, want the app's body", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the in-flight event was never answered")
	}
}

// grpcApp is a gRPC app wanting the "tick" binding.
type grpcApp struct {
	runtimev1.UnimplementedAppCallbackServer
	events chan *runtimev1.BindingEventRequest
}

func (g *grpcApp) ListInputBindings(context.Context, *emptypb.Empty) (*runtimev1.ListInputBindingsResponse, error) {
	return &runtimev1.ListInputBindingsResponse{Bindings: []string{"tick"}}, nil
}

func (g *grpcApp) OnBindingEvent(_ context.Context, in *runtimev1.BindingEventRequest) (*runtimev1.BindingEventResponse, error) {
	g.events <- in
	return &runtimev1.BindingEventResponse{}, nil
}

func TestCronFiresToGRPCApp(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcApp{events: make(chan *runtimev1.BindingEventRequest, 10)}
	srv := grpc.NewServer()
	runtimev1.RegisterAppCallbackServer(srv, g)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	ch, err := appchannel.NewGRPC(lis.Addr().String(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	api := bindings.New(bindings.Config{AppID: "app", App: ch, Bindings: table{
		"tick":  initInput(t, cronConn, "tick", map[string]string{"schedule": "@every 1s"}),
		"other": initInput(t, cronConn, "other", map[string]string{"schedule": "@every 1s"}),
	}})
	if err := api.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stop(t, api)
	for range 2 {
		select {
		case ev := <-g.events:
			if ev.GetName() != "tick" || ev.GetMetadata()["readTimeUTC"] == "" {
				t.Fatalf("event %v", ev)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("no OnBindingEvent within 3s")
		}
	}
}
