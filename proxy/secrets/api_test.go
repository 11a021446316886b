package secrets_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/proxy/httpapi"
	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/secrets"
)

// The block plugs into both API servers.
var (
	_ httpapi.RouteRegistrar = (*secrets.API)(nil)
	_ interface {
		GetSecret(context.Context, *runtimev1.GetSecretRequest) (*runtimev1.GetSecretResponse, error)
		GetBulkSecret(context.Context, *runtimev1.GetBulkSecretRequest) (*runtimev1.GetBulkSecretResponse, error)
	} = (*secrets.API)(nil)
)

type mapStores map[string]secrets.Store

func (m mapStores) Lookup(name string) (secrets.Store, bool) { s, ok := m[name]; return s, ok }
func (m mapStores) Names() []string                          { return slices.Sorted(maps.Keys(m)) }

// fixtureStores provisions the test's stores on the real plugin.
func fixtureStores(t *testing.T) mapStores {
	single := map[string]string{"secretsFile": secretsFile}
	m := mapStores{}
	for _, name := range []string{"localsecretstore", "scoped", "denylist", "denyall"} {
		m[name] = secrets.Store{Name: name, Conn: initInstance(t, uniq(t, name), single)}
	}
	m["multi"] = secrets.Store{Name: "multi", Conn: initInstance(t, uniq(t, "multi"), map[string]string{"secretsFile": secretsFile, "multiValued": "true"})}
	// A store whose plugin instance was never initialised: every call fails in the plugin.
	m["broken"] = secrets.Store{Name: "broken", Conn: instanceConn{cc: pluginConn, instance: uniq(t, "never-initialised")}}
	return m
}

var scopes = []resources.SecretsScope{
	{StoreName: "scoped", DefaultAccess: "deny", AllowedSecrets: []string{"db-pass"}},
	{StoreName: "denylist", DeniedSecrets: []string{"api-key"}},
	{StoreName: "denyall", DefaultAccess: "DENY"},
	{StoreName: "nowhere", DefaultAccess: "deny"}, // a scope for a store that does not exist changes nothing
}

type httpCase struct {
	name    string
	path    string
	status  int
	body    any    // expected JSON body on success
	code    string // expected errorCode on failure
	message string // expected message, when set
}

func TestHTTP(t *testing.T) {
	api := secrets.New(secrets.Config{Stores: fixtureStores(t), Scopes: scopes})
	mux := http.NewServeMux()
	api.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	all := map[string]any{
		"db-pass": map[string]any{"db-pass": "pw"}, "api-key": map[string]any{"api-key": "k"},
		"redis:password": map[string]any{"redis:password": "rp"}, "redis:user": map[string]any{"redis:user": "ru"},
	}
	for _, tc := range []httpCase{
		{name: "get", path: "/v1.0/secrets/localsecretstore/db-pass", status: 200, body: map[string]any{"db-pass": "pw"}},
		{name: "nested name", path: "/v1.0/secrets/localsecretstore/redis:password", status: 200, body: map[string]any{"redis:password": "rp"}},
		{name: "multi-valued", path: "/v1.0/secrets/multi/redis", status: 200, body: map[string]any{"password": "rp", "user": "ru"}},
		{name: "no values is 204", path: "/v1.0/secrets/multi/emptyobj", status: 204},
		{name: "metadata query accepted", path: "/v1.0/secrets/localsecretstore/api-key?metadata.version_id=2", status: 200, body: map[string]any{"api-key": "k"}},
		{name: "missing secret", path: "/v1.0/secrets/localsecretstore/nope", status: 500, code: "ERR_SECRET_GET",
			message: "failed getting secret with key nope from secret store localsecretstore: secret nope not found"},
		{name: "unknown store is 401", path: "/v1.0/secrets/vault/x", status: 401, code: "ERR_SECRET_STORE_NOT_FOUND",
			message: "failed finding secret store with key vault"},
		{name: "allow list allows", path: "/v1.0/secrets/scoped/db-pass", status: 200, body: map[string]any{"db-pass": "pw"}},
		{name: "allow list denies", path: "/v1.0/secrets/scoped/api-key", status: 403, code: "ERR_PERMISSION_DENIED",
			message: `access denied by policy to get "api-key" from "scoped"`},
		{name: "deny list denies", path: "/v1.0/secrets/denylist/api-key", status: 403, code: "ERR_PERMISSION_DENIED"},
		{name: "deny list allows others", path: "/v1.0/secrets/denylist/db-pass", status: 200, body: map[string]any{"db-pass": "pw"}},
		{name: "default deny", path: "/v1.0/secrets/denyall/db-pass", status: 403, code: "ERR_PERMISSION_DENIED"},
		{name: "denied before lookup", path: "/v1.0/secrets/denyall/nope", status: 403, code: "ERR_PERMISSION_DENIED"},
		{name: "plugin failure", path: "/v1.0/secrets/broken/x", status: 500, code: "ERR_SECRET_GET"},
		{name: "bulk", path: "/v1.0/secrets/localsecretstore/bulk", status: 200, body: all},
		{name: "bulk multi-valued", path: "/v1.0/secrets/multi/bulk", status: 200, body: map[string]any{
			"db-pass": map[string]any{"db-pass": "pw"}, "api-key": map[string]any{"api-key": "k"},
			"redis": map[string]any{"password": "rp", "user": "ru"}, "emptyobj": map[string]any{},
		}},
		{name: "bulk filtered by allow list", path: "/v1.0/secrets/scoped/bulk", status: 200, body: map[string]any{"db-pass": map[string]any{"db-pass": "pw"}}},
		{name: "bulk filtered by deny list", path: "/v1.0/secrets/denylist/bulk", status: 200, body: map[string]any{
			"db-pass": map[string]any{"db-pass": "pw"}, "redis:password": map[string]any{"redis:password": "rp"}, "redis:user": map[string]any{"redis:user": "ru"},
		}},
		{name: "bulk all denied", path: "/v1.0/secrets/denyall/bulk", status: 200, body: map[string]any{}},
		{name: "bulk unknown store", path: "/v1.0/secrets/vault/bulk", status: 401, code: "ERR_SECRET_STORE_NOT_FOUND"},
		{name: "bulk plugin failure", path: "/v1.0/secrets/broken/bulk", status: 500, code: "ERR_SECRET_GET"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkHTTP(t, srv.URL, tc) })
	}
}

func checkHTTP(t *testing.T, base string, tc httpCase) {
	t.Helper()
	resp, err := http.Get(base + tc.path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != tc.status {
		t.Fatalf("GET %s: %d %s, want %d", tc.path, resp.StatusCode, b, tc.status)
	}
	if tc.status == 204 {
		if len(b) != 0 {
			t.Fatalf("204 with a body: %s", b)
		}
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if tc.code != "" {
		var e struct{ ErrorCode, Message string }
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("error body %s: %v", b, err)
		}
		if e.ErrorCode != tc.code || (tc.message != "" && e.Message != tc.message) {
			t.Fatalf("error %+v, want %s %q", e, tc.code, tc.message)
		}
		return
	}
	var got any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	if !jsonEqual(got, tc.body) {
		t.Fatalf("body %s, want %v", b, tc.body)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestHTTPNoStoresConfigured(t *testing.T) {
	for _, stores := range []secrets.Stores{nil, mapStores{}} {
		api := secrets.New(secrets.Config{Stores: stores})
		mux := http.NewServeMux()
		api.RegisterHTTP(mux)
		srv := httptest.NewServer(mux)
		for _, p := range []string{"/v1.0/secrets/any/x", "/v1.0/secrets/any/bulk"} {
			checkHTTP(t, srv.URL, httpCase{path: p, status: 500, code: "ERR_SECRET_STORES_NOT_CONFIGURED", message: "secret store is not configured"})
		}
		srv.Close()
	}
}

// daprServer serves the block's two RPCs on a real gRPC server.
type daprServer struct {
	runtimev1.UnimplementedDaprServer
	api *secrets.API
}

func (d daprServer) GetSecret(ctx context.Context, in *runtimev1.GetSecretRequest) (*runtimev1.GetSecretResponse, error) {
	return d.api.GetSecret(ctx, in)
}

func (d daprServer) GetBulkSecret(ctx context.Context, in *runtimev1.GetBulkSecretRequest) (*runtimev1.GetBulkSecretResponse, error) {
	return d.api.GetBulkSecret(ctx, in)
}

func grpcClient(t *testing.T, api *secrets.API) runtimev1.DaprClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	runtimev1.RegisterDaprServer(s, daprServer{api: api})
	go func() { _ = s.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); s.Stop() })
	return runtimev1.NewDaprClient(conn)
}

func TestGRPC(t *testing.T) {
	c := grpcClient(t, secrets.New(secrets.Config{Stores: fixtureStores(t), Scopes: scopes}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, tc := range []struct {
		store, key string
		want       map[string]string
		code       codes.Code
	}{
		{"localsecretstore", "db-pass", map[string]string{"db-pass": "pw"}, codes.OK},
		{"multi", "redis", map[string]string{"password": "rp", "user": "ru"}, codes.OK},
		{"multi", "emptyobj", nil, codes.OK},
		{"localsecretstore", "nope", nil, codes.Internal},
		{"vault", "x", nil, codes.InvalidArgument},
		{"scoped", "api-key", nil, codes.PermissionDenied},
		{"scoped", "db-pass", map[string]string{"db-pass": "pw"}, codes.OK},
		{"denyall", "db-pass", nil, codes.PermissionDenied},
		{"broken", "x", nil, codes.Internal},
	} {
		resp, err := c.GetSecret(ctx, &runtimev1.GetSecretRequest{StoreName: tc.store, Key: tc.key, Metadata: map[string]string{"version_id": "1"}})
		if status.Code(err) != tc.code {
			t.Errorf("GetSecret %s/%s: %v, want %v", tc.store, tc.key, err, tc.code)
			continue
		}
		if err == nil && !maps.Equal(resp.GetData(), tc.want) {
			t.Errorf("GetSecret %s/%s = %v, want %v", tc.store, tc.key, resp.GetData(), tc.want)
		}
	}

	resp, err := c.GetBulkSecret(ctx, &runtimev1.GetBulkSecretRequest{StoreName: "denylist"})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(resp.GetData()))
	if want := []string{"db-pass", "redis:password", "redis:user"}; !slices.Equal(got, want) {
		t.Errorf("GetBulkSecret denylist names %v, want %v", got, want)
	}
	if v := resp.GetData()["redis:user"].GetSecrets(); !maps.Equal(v, map[string]string{"redis:user": "ru"}) {
		t.Errorf("GetBulkSecret denylist redis:user = %v", v)
	}
	if _, err := c.GetBulkSecret(ctx, &runtimev1.GetBulkSecretRequest{StoreName: "vault"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetBulkSecret unknown store: %v, want InvalidArgument", err)
	}
	if _, err := c.GetBulkSecret(ctx, &runtimev1.GetBulkSecretRequest{StoreName: "broken"}); status.Code(err) != codes.Internal {
		t.Errorf("GetBulkSecret broken store: %v, want Internal", err)
	}

	none := grpcClient(t, secrets.New(secrets.Config{}))
	if _, err := none.GetSecret(ctx, &runtimev1.GetSecretRequest{StoreName: "x", Key: "y"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("GetSecret with no stores: %v, want FailedPrecondition", err)
	}
	if _, err := none.GetBulkSecret(ctx, &runtimev1.GetBulkSecretRequest{StoreName: "x"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("GetBulkSecret with no stores: %v, want FailedPrecondition", err)
	}
}

// echoStore answers every secret with the request metadata it received.
type echoStore struct{}

func (echoStore) Init(context.Context, sdk.Metadata) error { return nil }
func (echoStore) Get(_ context.Context, _ string, md map[string]string) (map[string]string, error) {
	return md, nil
}
func (echoStore) BulkGet(_ context.Context, md map[string]string) (map[string]map[string]string, error) {
	return map[string]map[string]string{"md": md}, nil
}

func TestRequestMetadataReachesTheStore(t *testing.T) {
	lis, err := net.Listen("unix", filepath.Join(t.TempDir(), "echo.sock"))
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	closeAll, err := sdk.Register(s, sdk.WithSecretStore(func() sdk.SecretStore { return echoStore{} }))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(); _ = closeAll() })
	cc, err := grpc.NewClient("unix://"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	conn := initInstance(t, "echo", nil, cc)

	api := secrets.New(secrets.Config{Stores: mapStores{"echo": {Name: "echo", Conn: conn}}})
	mux := http.NewServeMux()
	api.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	checkHTTP(t, srv.URL, httpCase{path: "/v1.0/secrets/echo/x?metadata.version_id=2&metadata.a=b&other=x", status: 200,
		body: map[string]any{"version_id": "2", "a": "b"}})
	checkHTTP(t, srv.URL, httpCase{path: "/v1.0/secrets/echo/bulk?metadata.namespace=ns", status: 200,
		body: map[string]any{"md": map[string]any{"namespace": "ns"}}})
	checkHTTP(t, srv.URL, httpCase{path: "/v1.0/secrets/echo/x", status: 204})
}
