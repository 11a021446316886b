package lock

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
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
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/plugins/sdk"
	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// memLocks is an in-memory lock store served through the real SDK; it
// records the resource ids it sees so tests can check key prefixing.
type memLocks struct {
	mu     sync.Mutex
	leases map[string]string // resource → owner (no expiry needed here)
	seen   []string
	fail   bool
}

func (m *memLocks) Init(context.Context, sdk.Metadata) error { return nil }

func (m *memLocks) TryLock(_ context.Context, r *sdk.TryLockRequest) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = append(m.seen, r.ResourceID)
	if m.fail {
		return false, io.ErrUnexpectedEOF
	}
	if _, held := m.leases[r.ResourceID]; held {
		return false, nil
	}
	m.leases[r.ResourceID] = r.LockOwner
	return true, nil
}

func (m *memLocks) Unlock(_ context.Context, r *sdk.UnlockRequest) (sdk.UnlockStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return 0, io.ErrUnexpectedEOF
	}
	o, ok := m.leases[r.ResourceID]
	switch {
	case !ok:
		return sdk.LockDoesNotExist, nil
	case o != r.LockOwner:
		return sdk.LockBelongsToOthers, nil
	}
	delete(m.leases, r.ResourceID)
	return sdk.UnlockSuccess, nil
}

// instanceConn adds x-component-instance, as the plugin host's Conn does.
type instanceConn struct {
	*grpc.ClientConn
	name string
}

func (c instanceConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.ClientConn.Invoke(metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, c.name), method, args, reply, opts...)
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

type fixture struct {
	api   *API
	store *memLocks
	mux   *http.ServeMux
}

// newFixture serves memLocks through the SDK on a TCP loopback gRPC server
// and configures stores "locks" (default prefix), "named" (keyPrefix name)
// and "down" (a connection to a closed port).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	m := &memLocks{leases: map[string]string{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, sdk.WithLockStore(func() sdk.LockStore { return m }), sdk.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	_ = dead.Close()
	deadConn, err := grpc.NewClient(deadAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); _ = deadConn.Close(); srv.Stop(); _ = closeAll() })
	for _, name := range []string{"locks", "named"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ic := instanceConn{conn, name}
		err := ic.Invoke(ctx, "/outrigger.components.v1.LockStore/Init", &ocomponentsv1.LockStoreInitRequest{}, &ocomponentsv1.LockStoreInitResponse{})
		cancel()
		if err != nil {
			t.Fatalf("Init %s: %v", name, err)
		}
	}
	api := New(Config{AppID: "myapp", Stores: stores{
		"locks": {Name: "locks", Conn: instanceConn{conn, "locks"}},
		"named": {Name: "named", Conn: instanceConn{conn, "named"}, KeyPrefix: "name"},
		"down":  {Name: "down", Conn: instanceConn{deadConn, "down"}},
	}})
	mux := http.NewServeMux()
	api.RegisterHTTP(mux)
	return &fixture{api: api, store: m, mux: mux}
}

func (f *fixture) post(t *testing.T, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	return w
}

func wantBody(t *testing.T, w *httptest.ResponseRecorder, status int, body string) {
	t.Helper()
	if w.Code != status || strings.TrimSpace(w.Body.String()) != body {
		t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, status, body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func wantErr(t *testing.T, w *httptest.ResponseRecorder, status int, code, msg string) {
	t.Helper()
	var b struct{ ErrorCode, Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Code != status || b.ErrorCode != code || !strings.Contains(b.Message, msg) {
		t.Fatalf("got %d %s, want %d %s containing %q", w.Code, w.Body, status, code, msg)
	}
}

func TestHTTPFlow(t *testing.T) {
	f := newFixture(t)
	wantBody(t, f.post(t, "/v1.0-alpha1/lock/locks", `{"resourceId":"job","lockOwner":"a","expiryInSeconds":30}`), 200, `{"success":true}`)
	// Unpopulated fields are emitted, as Dapr does.
	wantBody(t, f.post(t, "/v1.0-alpha1/lock/locks", `{"resourceId":"job","lockOwner":"b","expiryInSeconds":30}`), 200, `{"success":false}`)
	// Numeric statuses.
	wantBody(t, f.post(t, "/v1.0-alpha1/unlock/locks", `{"resourceId":"job","lockOwner":"b"}`), 200, `{"status":2}`)
	wantBody(t, f.post(t, "/v1.0-alpha1/unlock/locks", `{"resourceId":"job","lockOwner":"a"}`), 200, `{"status":0}`)
	wantBody(t, f.post(t, "/v1.0-alpha1/unlock/locks", `{"resourceId":"job","lockOwner":"a"}`), 200, `{"status":1}`)
	// snake_case field names are accepted too (protojson), unknown fields ignored.
	wantBody(t, f.post(t, "/v1.0-alpha1/lock/named", `{"resource_id":"job","lock_owner":"a","expiry_in_seconds":5,"extra":1}`), 200, `{"success":true}`)
	f.store.mu.Lock()
	seen := strings.Join(f.store.seen, " ")
	f.store.mu.Unlock()
	if seen != "lock||myapp||job lock||myapp||job lock||named||job" {
		t.Fatalf("plugin saw resource ids %q", seen)
	}
}

func TestHTTPErrors(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, path, body string
		status           int
		code, msg        string
	}{
		{"bad json", "/v1.0-alpha1/lock/locks", `{`, 400, "ERR_MALFORMED_REQUEST", "failed deserializing HTTP body"},
		{"empty body", "/v1.0-alpha1/lock/locks", ``, 400, "ERR_MALFORMED_REQUEST", "ExpiryInSeconds is not positive in lock store locks"},
		{"zero expiry", "/v1.0-alpha1/lock/locks", `{"resourceId":"r","lockOwner":"o"}`, 400, "ERR_MALFORMED_REQUEST", "ExpiryInSeconds is not positive"},
		{"negative expiry", "/v1.0-alpha1/lock/locks", `{"resourceId":"r","lockOwner":"o","expiryInSeconds":-1}`, 400, "ERR_MALFORMED_REQUEST", "ExpiryInSeconds is not positive"},
		{"no resource", "/v1.0-alpha1/lock/locks", `{"lockOwner":"o","expiryInSeconds":1}`, 400, "ERR_MALFORMED_REQUEST", "ResourceId is empty in lock store locks"},
		{"no owner", "/v1.0-alpha1/lock/locks", `{"resourceId":"r","expiryInSeconds":1}`, 400, "ERR_MALFORMED_REQUEST", "LockOwner is empty in lock store locks"},
		{"unknown store", "/v1.0-alpha1/lock/nope", `{"resourceId":"r","lockOwner":"o","expiryInSeconds":1}`, 400, "ERR_LOCK_STORE_NOT_FOUND", "lock store nope not found"},
		{"illegal id", "/v1.0-alpha1/lock/locks", `{"resourceId":"a||b","lockOwner":"o","expiryInSeconds":1}`, 500, "ERR_TRY_LOCK", "can't contain '||'"},
		{"plugin down", "/v1.0-alpha1/lock/down", `{"resourceId":"r","lockOwner":"o","expiryInSeconds":1}`, 500, "ERR_TRY_LOCK", "failed to try acquiring lock"},
		{"unlock bad json", "/v1.0-alpha1/unlock/locks", `[`, 400, "ERR_MALFORMED_REQUEST", "failed deserializing HTTP body"},
		{"unlock no resource", "/v1.0-alpha1/unlock/locks", `{"lockOwner":"o"}`, 400, "ERR_MALFORMED_REQUEST", "ResourceId is empty"},
		{"unlock no owner", "/v1.0-alpha1/unlock/locks", `{"resourceId":"r"}`, 400, "ERR_MALFORMED_REQUEST", "LockOwner is empty"},
		{"unlock unknown store", "/v1.0-alpha1/unlock/nope", `{"resourceId":"r","lockOwner":"o"}`, 400, "ERR_LOCK_STORE_NOT_FOUND", "nope"},
		{"unlock plugin down", "/v1.0-alpha1/unlock/down", `{"resourceId":"r","lockOwner":"o"}`, 500, "ERR_UNLOCK", "failed to release lock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, f.post(t, tc.path, tc.body), tc.status, tc.code, tc.msg)
		})
	}
}

func TestStoreErrors(t *testing.T) {
	f := newFixture(t)
	f.store.fail = true
	wantErr(t, f.post(t, "/v1.0-alpha1/lock/locks", `{"resourceId":"r","lockOwner":"o","expiryInSeconds":1}`), 500, "ERR_TRY_LOCK", "unexpected EOF")
	wantErr(t, f.post(t, "/v1.0-alpha1/unlock/locks", `{"resourceId":"r","lockOwner":"o"}`), 500, "ERR_UNLOCK", "unexpected EOF")
}

func TestNotConfigured(t *testing.T) {
	mux := http.NewServeMux()
	New(Config{AppID: "a", Stores: stores{}}).RegisterHTTP(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1.0-alpha1/unlock/x", strings.NewReader(`{"resourceId":"r","lockOwner":"o"}`)))
	wantErr(t, w, 500, "ERR_LOCK_STORE_NOT_CONFIGURED", "lock store is not configured")
	// Dapr checks the expiry before anything else.
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1.0-alpha1/lock/x", strings.NewReader(`{"resourceId":"r","lockOwner":"o"}`)))
	wantErr(t, w, 400, "ERR_MALFORMED_REQUEST", "ExpiryInSeconds")
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1.0-alpha1/lock/x", strings.NewReader(`{"resourceId":"r","lockOwner":"o","expiryInSeconds":1}`)))
	wantErr(t, w, 500, "ERR_LOCK_STORE_NOT_CONFIGURED", "lock store is not configured")
}

// daprLock exposes the block on a real Dapr gRPC service.
type daprLock struct {
	runtimev1.UnimplementedDaprServer
	api *API
}

func (d daprLock) TryLockAlpha1(ctx context.Context, in *runtimev1.TryLockRequest) (*runtimev1.TryLockResponse, error) {
	return d.api.TryLockAlpha1(ctx, in)
}

func (d daprLock) UnlockAlpha1(ctx context.Context, in *runtimev1.UnlockRequest) (*runtimev1.UnlockResponse, error) {
	return d.api.UnlockAlpha1(ctx, in)
}

func TestGRPC(t *testing.T) {
	f := newFixture(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimev1.RegisterDaprServer(srv, daprLock{api: f.api})
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

	r, err := c.TryLockAlpha1(ctx, &runtimev1.TryLockRequest{StoreName: "locks", ResourceId: "g", LockOwner: "a", ExpiryInSeconds: 10})
	if err != nil || !r.GetSuccess() {
		t.Fatalf("TryLockAlpha1: %v %v", r, err)
	}
	r, err = c.TryLockAlpha1(ctx, &runtimev1.TryLockRequest{StoreName: "locks", ResourceId: "g", LockOwner: "b", ExpiryInSeconds: 10})
	if err != nil || r.GetSuccess() {
		t.Fatalf("second TryLockAlpha1: %v %v", r, err)
	}
	u, err := c.UnlockAlpha1(ctx, &runtimev1.UnlockRequest{StoreName: "locks", ResourceId: "g", LockOwner: "b"})
	if err != nil || u.GetStatus() != runtimev1.UnlockResponse_LOCK_BELONGS_TO_OTHERS {
		t.Fatalf("UnlockAlpha1 by non-owner: %v %v", u, err)
	}
	u, err = c.UnlockAlpha1(ctx, &runtimev1.UnlockRequest{StoreName: "locks", ResourceId: "g", LockOwner: "a"})
	if err != nil || u.GetStatus() != runtimev1.UnlockResponse_SUCCESS {
		t.Fatalf("UnlockAlpha1 by owner: %v %v", u, err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"zero expiry", func() error {
			_, err := c.TryLockAlpha1(ctx, &runtimev1.TryLockRequest{StoreName: "locks", ResourceId: "g", LockOwner: "a"})
			return err
		}, codes.InvalidArgument, "ExpiryInSeconds is not positive"},
		{"unknown store", func() error {
			_, err := c.UnlockAlpha1(ctx, &runtimev1.UnlockRequest{StoreName: "nope", ResourceId: "g", LockOwner: "a"})
			return err
		}, codes.InvalidArgument, "lock store nope not found"},
		{"plugin down", func() error {
			_, err := c.TryLockAlpha1(ctx, &runtimev1.TryLockRequest{StoreName: "down", ResourceId: "g", LockOwner: "a", ExpiryInSeconds: 1})
			return err
		}, codes.Internal, "failed to try acquiring lock"},
	} {
		err := tc.call()
		if st, _ := status.FromError(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("%s: got %v, want %s containing %q", tc.name, err, tc.code, tc.msg)
		}
	}
}

func TestLockKey(t *testing.T) {
	for _, tc := range []struct{ id, strategy, store, app, want, wantErr string }{
		{"r", "", "s", "app", "lock||app||r", ""},
		{"r", "AppId", "s", "app", "lock||app||r", ""},
		{"r", "appid", "s", "", "lock||r", ""},
		{"r", "name", "s", "app", "lock||s||r", ""},
		{"r", "none", "s", "app", "lock||r", ""},
		{"r", "MyPrefix", "s", "app", "lock||myprefix||r", ""}, // Dapr lower-cases literal prefixes
		{"a||b", "", "s", "app", "", "can't contain"},
		{"r", "x||y", "s", "app", "", "can't contain"},
	} {
		got, err := lockKey(tc.id, tc.strategy, tc.store, tc.app)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("lockKey(%q, %q): %q, %v; want error %q", tc.id, tc.strategy, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("lockKey(%q, %q) = %q, %v; want %q", tc.id, tc.strategy, got, err, tc.want)
		}
	}
}
