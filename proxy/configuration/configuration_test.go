package configuration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/plugins/sdk"
	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
	"github.com/outrigger/outrigger/proxy/appchannel"
)

// memStore is an in-memory configuration store served through the real SDK.
type memStore struct {
	mu      sync.Mutex
	items   map[string]sdk.ConfigurationItem
	subs    map[int]chan map[string]sdk.ConfigurationItem
	next    int
	failGet bool
	breakCh chan struct{} // closing it ends every live subscription with an error
}

func newMem() *memStore {
	return &memStore{items: map[string]sdk.ConfigurationItem{}, subs: map[int]chan map[string]sdk.ConfigurationItem{}, breakCh: make(chan struct{})}
}

func (m *memStore) Init(context.Context, sdk.Metadata) error { return nil }

func (m *memStore) Get(_ context.Context, r *sdk.ConfigurationGetRequest) (map[string]sdk.ConfigurationItem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failGet {
		return nil, errors.New("backend exploded")
	}
	out := map[string]sdk.ConfigurationItem{}
	for k, v := range m.items {
		if len(r.Keys) == 0 || slices.Contains(r.Keys, k) {
			out[k] = v
		}
	}
	return out, nil
}

func (m *memStore) Subscribe(ctx context.Context, r *sdk.ConfigurationSubscribeRequest, ready func(), h sdk.ConfigurationHandler) error {
	ch := make(chan map[string]sdk.ConfigurationItem, 16)
	m.mu.Lock()
	id := m.next
	m.next++
	m.subs[id] = ch
	brk := m.breakCh
	m.mu.Unlock()
	defer func() { m.mu.Lock(); delete(m.subs, id); m.mu.Unlock() }()
	ready()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-brk:
			return errors.New("connection to backend lost")
		case items := <-ch:
			for k := range items {
				if len(r.Keys) == 0 || slices.Contains(r.Keys, k) {
					if err := h(ctx, items); err != nil {
						return nil
					}
					break
				}
			}
		}
	}
}

func (m *memStore) set(key, value, version string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it := sdk.ConfigurationItem{Value: value, Version: version, Metadata: map[string]string{"src": "test"}}
	m.items[key] = it
	for _, ch := range m.subs {
		ch <- map[string]sdk.ConfigurationItem{key: it}
	}
}

func (m *memStore) subscribers() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.subs) }

// breakSubscriptions ends every live subscription with an error.
func (m *memStore) breakSubscriptions() {
	m.mu.Lock()
	defer m.mu.Unlock()
	close(m.breakCh)
	m.breakCh = make(chan struct{})
}

type instanceConn struct {
	*grpc.ClientConn
	name string
}

func (c instanceConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.ClientConn.Invoke(metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, c.name), method, args, reply, opts...)
}

func (c instanceConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.ClientConn.NewStream(metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, c.name), desc, method, opts...)
}

type stores map[string]Store

func (s stores) Lookup(n string) (Store, bool) { st, ok := s[n]; return st, ok }
func (s stores) Names() []string {
	var out []string
	for n := range s {
		out = append(out, n)
	}
	return out
}

// appUpdate is one update the app received.
type appUpdate struct {
	path string
	body struct {
		ID    string          `json:"id"`
		Items map[string]item `json:"items"`
	}
}

type fixture struct {
	api     *API
	store   *memStore
	mux     *http.ServeMux
	updates chan appUpdate
}

func newFixture(t *testing.T, withApp bool) *fixture {
	t.Helper()
	m := newMem()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, sdk.WithConfigurationStore(func() sdk.ConfigurationStore { return m }), sdk.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ic := instanceConn{conn, "conf"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ocomponentsv1.NewConfigurationStoreClient(ic).Init(ctx, &ocomponentsv1.ConfigurationStoreInitRequest{}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: m, updates: make(chan appUpdate, 64)}
	cfg := Config{Stores: stores{"conf": {Name: "conf", Conn: ic}}}
	if withApp {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var u appUpdate
			u.path = r.Method + " " + r.URL.Path
			if err := json.NewDecoder(r.Body).Decode(&u.body); err != nil {
				t.Errorf("app got a bad body: %v", err)
			}
			f.updates <- u
		}))
		t.Cleanup(app.Close)
		cfg.AppChannel = appchannel.NewHTTP(strings.TrimPrefix(app.URL, "http://"), "", 0)
	}
	f.api = New(cfg)
	f.mux = http.NewServeMux()
	f.api.RegisterHTTP(f.mux)
	t.Cleanup(func() { _ = f.api.Close(); _ = conn.Close(); srv.Stop(); _ = closeAll() })
	return f
}

func (f *fixture) get(t *testing.T, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

func wantErr(t *testing.T, w *httptest.ResponseRecorder, status int, code, msg string) {
	t.Helper()
	var b struct{ ErrorCode, Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Code != status || b.ErrorCode != code || !strings.Contains(b.Message, msg) {
		t.Fatalf("got %d %s, want %d %s containing %q", w.Code, w.Body, status, code, msg)
	}
}

func (f *fixture) waitUpdate(t *testing.T, key, value string) appUpdate {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case u := <-f.updates:
			if it, ok := u.body.Items[key]; ok && it.Value == value {
				return u
			}
		case <-deadline:
			t.Fatalf("the app did not receive %s=%q", key, value)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHTTPGet(t *testing.T) {
	f := newFixture(t, false)
	f.store.set("a", "1", "v1")
	f.store.set("b", "2", "v2")
	for _, v := range []string{"v1.0", "v1.0-alpha1"} {
		w := f.get(t, "/"+v+"/configuration/conf?key=a&key=b&key=missing&metadata.x=y")
		if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s", v, w.Code, w.Body)
		}
		var got map[string]item
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["a"].Value != "1" || got["a"].Version != "v1" || got["b"].Metadata["src"] != "test" {
			t.Fatalf("%s: items %+v", v, got)
		}
	}
	if w := f.get(t, "/v1.0/configuration/conf?key=missing"); w.Code != 204 || w.Body.Len() != 0 {
		t.Fatalf("no items: %d %q, want 204", w.Code, w.Body)
	}
	if w := f.get(t, "/v1.0/configuration/conf"); w.Code != 200 || !strings.Contains(w.Body.String(), `"b":{"value":"2"`) {
		t.Fatalf("all items: %d %s", w.Code, w.Body)
	}
}

func TestHTTPErrors(t *testing.T) {
	f := newFixture(t, false)
	wantErr(t, f.get(t, "/v1.0/configuration/nope?key=a"), 400, "ERR_CONFIGURATION_STORE_NOT_FOUND", "configuration store nope not found")
	wantErr(t, f.get(t, "/v1.0/configuration/nope/subscribe"), 400, "ERR_CONFIGURATION_STORE_NOT_FOUND", "nope")
	wantErr(t, f.get(t, "/v1.0/configuration/conf/subscribe?key=a"), 500, "ERR_APP_CHANNEL_NIL", "cannot subscribe to configuration updates")
	f.store.failGet = true
	wantErr(t, f.get(t, "/v1.0/configuration/conf?key=a&key=b"), 500, "ERR_CONFIGURATION_GET", "failed to get [a b] from Configuration store conf: backend exploded")

	w := f.get(t, "/v1.0/configuration/conf/does-not-exist/unsubscribe")
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"ok":false`) || !strings.Contains(w.Body.String(), "failed to unsubscribe to configuration request does-not-exist") {
		t.Fatalf("unsubscribe unknown id: %d %s", w.Code, w.Body)
	}

	mux := http.NewServeMux()
	New(Config{Stores: stores{}}).RegisterHTTP(mux)
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1.0/configuration/x?key=a", nil))
	wantErr(t, w, 500, "ERR_CONFIGURATION_STORE_NOT_CONFIGURED", "configuration stores not configured")
}

func TestHTTPSubscribePushesToApp(t *testing.T) {
	f := newFixture(t, true)
	w := f.get(t, "/v1.0/configuration/conf/subscribe?key=flag")
	var sub struct{ ID string }
	if err := json.Unmarshal(w.Body.Bytes(), &sub); w.Code != 200 || err != nil || sub.ID == "" {
		t.Fatalf("subscribe: %d %s", w.Code, w.Body)
	}
	// The subscription is live when subscribe returns: no wait needed.
	f.store.set("other", "x", "1")
	f.store.set("flag", "on", "2")
	u := f.waitUpdate(t, "flag", "on")
	if u.path != "POST /configuration/conf/flag" || u.body.ID != sub.ID || u.body.Items["flag"].Version != "2" {
		t.Fatalf("update %+v", u)
	}
	if _, ok := u.body.Items["other"]; ok {
		t.Fatalf("unwatched key delivered: %+v", u)
	}

	// A broken plugin stream is re-opened.
	f.store.breakSubscriptions()
	waitFor(t, "re-subscription", func() bool {
		f.store.mu.Lock()
		defer f.store.mu.Unlock()
		return f.store.next == 2 && len(f.store.subs) == 1
	})
	f.store.set("flag", "off", "3")
	f.waitUpdate(t, "flag", "off")

	w = f.get(t, "/v1.0-alpha1/configuration/conf/"+sub.ID+"/unsubscribe")
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"ok":true}` {
		t.Fatalf("unsubscribe: %d %s", w.Code, w.Body)
	}
	waitFor(t, "the plugin subscription to close", func() bool { return f.store.subscribers() == 0 })
	if w := f.get(t, "/v1.0/configuration/conf/"+sub.ID+"/unsubscribe"); w.Code != 500 {
		t.Fatalf("second unsubscribe: %d %s", w.Code, w.Body)
	}
}

// daprConf exposes the block on a real Dapr gRPC service.
type daprConf struct {
	runtimev1.UnimplementedDaprServer
	api *API
}

func (d daprConf) GetConfiguration(ctx context.Context, in *runtimev1.GetConfigurationRequest) (*runtimev1.GetConfigurationResponse, error) {
	return d.api.GetConfiguration(ctx, in)
}

func (d daprConf) GetConfigurationAlpha1(ctx context.Context, in *runtimev1.GetConfigurationRequest) (*runtimev1.GetConfigurationResponse, error) {
	return d.api.GetConfigurationAlpha1(ctx, in)
}

func (d daprConf) SubscribeConfiguration(in *runtimev1.SubscribeConfigurationRequest, s runtimev1.Dapr_SubscribeConfigurationServer) error {
	return d.api.SubscribeConfiguration(in, s)
}

func (d daprConf) SubscribeConfigurationAlpha1(in *runtimev1.SubscribeConfigurationRequest, s runtimev1.Dapr_SubscribeConfigurationAlpha1Server) error {
	return d.api.SubscribeConfigurationAlpha1(in, s)
}

func (d daprConf) UnsubscribeConfiguration(ctx context.Context, in *runtimev1.UnsubscribeConfigurationRequest) (*runtimev1.UnsubscribeConfigurationResponse, error) {
	return d.api.UnsubscribeConfiguration(ctx, in)
}

func (d daprConf) UnsubscribeConfigurationAlpha1(ctx context.Context, in *runtimev1.UnsubscribeConfigurationRequest) (*runtimev1.UnsubscribeConfigurationResponse, error) {
	return d.api.UnsubscribeConfigurationAlpha1(ctx, in)
}

func TestGRPC(t *testing.T) {
	f := newFixture(t, false)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimev1.RegisterDaprServer(srv, daprConf{api: f.api})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := runtimev1.NewDaprClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	f.store.set("a", "1", "v1")
	for _, get := range []func(context.Context, *runtimev1.GetConfigurationRequest, ...grpc.CallOption) (*runtimev1.GetConfigurationResponse, error){c.GetConfiguration, c.GetConfigurationAlpha1} {
		r, err := get(ctx, &runtimev1.GetConfigurationRequest{StoreName: "conf", Keys: []string{"a", "zz"}})
		if err != nil || len(r.GetItems()) != 1 || r.GetItems()["a"].GetValue() != "1" || r.GetItems()["a"].GetVersion() != "v1" {
			t.Fatalf("GetConfiguration: %v %v", r, err)
		}
	}
	_, err = c.GetConfiguration(ctx, &runtimev1.GetConfigurationRequest{StoreName: "nope"})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "configuration store nope not found") {
		t.Fatalf("unknown store: %v", err)
	}

	stream, err := c.SubscribeConfigurationAlpha1(ctx, &runtimev1.SubscribeConfigurationRequest{StoreName: "conf", Keys: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetId() == "" || len(first.GetItems()) != 0 {
		t.Fatalf("first message: %v %v", first, err)
	}
	f.store.set("a", "2", "v2")
	m, err := stream.Recv()
	if err != nil || m.GetId() != first.GetId() || m.GetItems()["a"].GetValue() != "2" {
		t.Fatalf("update: %v %v", m, err)
	}
	u, err := c.UnsubscribeConfiguration(ctx, &runtimev1.UnsubscribeConfigurationRequest{StoreName: "conf", Id: first.GetId()})
	if err != nil || !u.GetOk() {
		t.Fatalf("unsubscribe: %v %v", u, err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream after unsubscribe: %v, want EOF", err)
	}
	waitFor(t, "the plugin subscription to close", func() bool { return f.store.subscribers() == 0 })
	u, err = c.UnsubscribeConfiguration(ctx, &runtimev1.UnsubscribeConfigurationRequest{StoreName: "conf", Id: first.GetId()})
	if err != nil || u.GetOk() || !strings.Contains(u.GetMessage(), "subscription does not exist") {
		t.Fatalf("second unsubscribe: %v %v", u, err)
	}

	// Closing the stream is the other way to unsubscribe.
	sctx, scancel := context.WithCancel(ctx)
	stream2, err := c.SubscribeConfiguration(sctx, &runtimev1.SubscribeConfigurationRequest{StoreName: "conf"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream2.Recv(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plugin subscription", func() bool { return f.store.subscribers() == 1 })
	scancel()
	waitFor(t, "the plugin subscription to close", func() bool { return f.store.subscribers() == 0 })

	// A store failure ends the caller's stream with ERR_CONFIGURATION_SUBSCRIBE.
	stream3, err := c.SubscribeConfiguration(ctx, &runtimev1.SubscribeConfigurationRequest{StoreName: "conf"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream3.Recv(); err != nil {
		t.Fatal(err)
	}
	f.store.breakSubscriptions()
	if _, err := stream3.Recv(); !strings.Contains(err.Error(), "connection to backend lost") {
		t.Fatalf("stream after a store failure: %v", err)
	}
}
