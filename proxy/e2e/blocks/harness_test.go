package blockse2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
	"github.com/redis/go-redis/v9"
)

// ---------------------------------------------------------------- backends

const redisAddr = "127.0.0.1:6379"

// needRedis fails the test (never skips) when Redis is not listening, and
// returns a client closed at the end of the test.
func needRedis(t *testing.T) *redis.Client {
	t.Helper()
	c, err := net.DialTimeout("tcp", redisAddr, 2*time.Second)
	if err != nil {
		t.Fatalf("Redis is not reachable on %s (%v); start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' (or run `bash .ci/services`)", redisAddr, err)
	}
	c.Close()
	rc := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { rc.Close() })
	return rc
}

// delRedisKeys deletes every key matching pattern when the test ends.
func delRedisKeys(t *testing.T, rc *redis.Client, pattern string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rc.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
	})
}

// ---------------------------------------------------------------- manifests

// component is one Component manifest.
type component struct {
	name, typ string
	md        map[string]string
	// refs are metadata items whose value comes from a secret:
	// item name → [secret name, key].
	refs        map[string][2]string
	secretStore string // auth.secretStore
}

func (c component) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: %s\nspec:\n  type: %s\n  version: v1\n", c.name, c.typ)
	if len(c.md)+len(c.refs) > 0 {
		b.WriteString("  metadata:\n")
		for _, k := range sortedKeys(c.md) {
			fmt.Fprintf(&b, "  - name: %s\n    value: %s\n", k, strconv.Quote(c.md[k]))
		}
		for _, k := range sortedKeys(c.refs) {
			r := c.refs[k]
			fmt.Fprintf(&b, "  - name: %s\n    secretKeyRef:\n      name: %s\n      key: %s\n", k, strconv.Quote(r[0]), strconv.Quote(r[1]))
		}
	}
	if c.secretStore != "" {
		fmt.Fprintf(&b, "auth:\n  secretStore: %s\n", c.secretStore)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// writeComponents writes the manifests as one multi-document file in a new
// directory and returns the directory.
func writeComponents(t *testing.T, cs ...component) string {
	t.Helper()
	dir := t.TempDir()
	var docs []string
	for _, c := range cs {
		docs = append(docs, c.yaml())
	}
	writeFile(t, filepath.Join(dir, "components.yaml"), strings.Join(docs, "---\n"))
	return dir
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeJSON writes v as JSON to a new file in a temp dir and returns its path.
func writeJSON(t *testing.T, name string, v any) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	writeFile(t, p, string(mustJSON(t, v)))
	return p
}

// ---------------------------------------------------------------- sidecars

// sidecar is one running `outrigger sidecar`.
type sidecar struct {
	*e2etest.Sidecar
	appID              string
	httpPort, grpcPort int
}

type sidecarOpts struct {
	appID     string
	resources string // --resources-path ("" = none)
	config    string // --config ("" = none)
	appPort   int    // --app-port (0 = no app)
	home      string // OUTRIGGER_HOME ("" = a new temp dir)
	args      []string
}

// startSidecar starts a sidecar and waits until GET /v1.0/healthz answers 204.
func startSidecar(t *testing.T, o sidecarOpts) *sidecar {
	t.Helper()
	if o.appID == "" {
		o.appID = e2etest.Uniq("blocks-e2e-")
	}
	var args []string
	if o.resources != "" {
		args = append(args, "--resources-path", o.resources)
	}
	if o.config != "" {
		args = append(args, "--config", o.config)
	}
	if o.appPort != 0 {
		args = append(args, "--app-port", strconv.Itoa(o.appPort), "--app-protocol", "http")
	}
	s := e2etest.LaunchSidecar(t, e2etest.SidecarConfig{Bin: outrigger, AppID: o.appID, Home: o.home, Args: append(args, o.args...)})
	s.WaitHealthy(t, 30*time.Second)
	return &sidecar{Sidecar: s, appID: s.AppID, httpPort: s.HTTPPort, grpcPort: s.GRPCPort}
}

// ---------------------------------------------------------------- HTTP

var httpc = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}

type result struct {
	status int
	header http.Header
	body   []byte
}

// tryDo sends a non-nil body as JSON.
func tryDo(method, url string, body []byte, timeout time.Duration) (result, error) {
	r, err := e2etest.Request(httpc, method, url, e2etest.JSONDefault(nil, body), body, timeout)
	return result{status: r.Status, header: r.Header, body: r.Body}, err
}

// do is one request that must get an answer within 20 s. A non-nil body
// that is not []byte is sent as JSON.
func do(t *testing.T, method, url string, body any) result {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		b = v
	default:
		b = mustJSON(t, v)
	}
	r, err := tryDo(method, url, b, 20*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// decode unmarshals r's body into v, failing the test with the body otherwise.
func decode(t *testing.T, what string, r result, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s: body is not the expected JSON (%v): %d %s", what, err, r.status, r.body)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// daprError is Dapr's JSON error body.
type daprError = e2etest.DaprError

// wantError checks status and errorCode of a Dapr error answer.
func wantError(t *testing.T, what string, r result, status int, code string) {
	t.Helper()
	var e daprError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("%s: body is not Dapr's JSON error: %v; status %d body %q", what, err, r.status, r.body)
	}
	if r.status != status || e.ErrorCode != code {
		t.Errorf("%s: got %d %q, want %d %s (body %s)", what, r.status, e.ErrorCode, status, code, r.body)
	}
}

// ---------------------------------------------------------------- the app

// appRequest is one request the sidecar made to the test app.
type appRequest struct {
	method, path string
	header       http.Header
	body         []byte
	at           time.Time
}

// testApp is an HTTP app the sidecar calls (--app-port). It answers 200 to
// everything (405 to OPTIONS is not needed: 200 subscribes input bindings)
// and records every request except the sidecar's own start-up probes.
type testApp struct {
	port int
	mu   sync.Mutex
	reqs []appRequest
	// notify gets a non-blocking signal after each recorded request.
	notify chan struct{}
}

func startApp(t *testing.T) *testApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for the test app: %v", err)
	}
	a := &testApp{port: ln.Addr().(*net.TCPAddr).Port, notify: make(chan struct{}, 1)}
	srv := &http.Server{Handler: http.HandlerFunc(a.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return a
}

func (a *testApp) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/dapr/config", "/dapr/subscribe", "/healthz":
		http.NotFound(w, r)
		return
	}
	a.mu.Lock()
	a.reqs = append(a.reqs, appRequest{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body, at: time.Now()})
	a.mu.Unlock()
	select {
	case a.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusOK)
}

// requests returns the recorded requests with the given method and path.
func (a *testApp) requests(method, path string) []appRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []appRequest
	for _, r := range a.reqs {
		if r.method == method && r.path == path {
			out = append(out, r)
		}
	}
	return out
}
