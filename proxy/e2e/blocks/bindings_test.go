package blockse2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// TestBindingsCron: bindings.cron "@every 1s" delivers POST /<binding name>
// to the app once a second, after the sidecar's OPTIONS probe; with
// direction input and a route, the probe is skipped and events go to the
// route.
func TestBindingsCron(t *testing.T) {
	needPlugin(t, "bindings-cron")
	app := startApp(t)
	tick := component{name: "tick", typ: "bindings.cron", md: map[string]string{"schedule": "@every 1s"}}
	tock := component{name: "tock", typ: "bindings.cron", md: map[string]string{"schedule": "@every 1s", "direction": "input", "route": "/tock-route"}}
	sc := startSidecar(t, sidecarOpts{resources: writeComponents(t, tick, tock), appPort: app.port})
	sc.needComponents(t, "tick", "tock")

	e2etest.WaitFor(t, 10*time.Second, "the first POST /tick", func() bool { return len(app.requests(http.MethodPost, "/tick")) > 0 })
	first := app.requests(http.MethodPost, "/tick")[0].at
	const window = 3500 * time.Millisecond
	e2etest.WaitFor(t, window+2*time.Second, "the window to pass", func() bool { return time.Since(first) > window })
	n := 0
	for _, r := range app.requests(http.MethodPost, "/tick") {
		if !r.at.Before(first) && r.at.Sub(first) <= window {
			n++
		}
	}
	if n < 3 || n > 5 {
		t.Errorf("@every 1s delivered %d events to POST /tick in %v from the first, want 4 (3 to 5)", n, window)
	}
	if len(app.requests(http.MethodOptions, "/tick")) == 0 {
		t.Errorf("no OPTIONS /tick probe before delivering to a binding without direction metadata")
	}
	if len(app.requests(http.MethodPost, "/tock-route")) == 0 {
		t.Errorf("no event delivered to the route /tock-route of binding tock")
	}
	if len(app.requests(http.MethodOptions, "/tock-route")) != 0 || len(app.requests(http.MethodOptions, "/tock")) != 0 {
		t.Errorf("binding tock with direction input was probed with OPTIONS")
	}
	if len(app.requests(http.MethodPost, "/tock")) != 0 {
		t.Errorf("binding tock delivered to /tock, not its route /tock-route")
	}
}

// needComponents fails the test at once when the sidecar did not register
// the named components (a building block not wired yet skips them).
func (s *sidecar) needComponents(t *testing.T, names ...string) {
	t.Helper()
	r := do(t, http.MethodGet, s.URL("/v1.0/metadata"), nil)
	var md struct {
		Components []struct{ Name, Type string } `json:"components"`
	}
	decode(t, "metadata", r, &md)
	have := map[string]bool{}
	for _, c := range md.Components {
		have[c.Name] = true
	}
	for _, n := range names {
		if !have[n] {
			t.Fatalf("component %q is not registered by the sidecar (GET /v1.0/metadata lists %v); is its building block wired in proxy/sidecar?", n, md.Components)
		}
	}
}

// upstream is the HTTP server an output binding calls.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []appRequest
}

func startUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, appRequest{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		u.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/missing") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		_, _ = io.WriteString(w, `{"method":"`+r.Method+`","path":"`+r.URL.Path+`"}`)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last(t *testing.T) appRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatalf("the upstream server got no request")
	}
	return u.reqs[len(u.reqs)-1]
}

// TestBindingsHTTPOutput: InvokeBinding over HTTP and the Go SDK through
// bindings.http to a local server.
func TestBindingsHTTPOutput(t *testing.T) {
	needPlugin(t, "bindings-http")
	up := startUpstream(t)
	api := component{name: "api", typ: "bindings.http", md: map[string]string{"url": up.URL + "/base"}}
	sc := startSidecar(t, sidecarOpts{resources: writeComponents(t, api)})
	sc.needComponents(t, "api")

	for _, method := range []string{http.MethodPost, http.MethodPut} {
		r := do(t, method, sc.URL("/v1.0/bindings/api"), map[string]any{
			"operation": "post", "data": map[string]any{"order": 1},
			"metadata": map[string]string{"path": "orders", "X-Request-Id": "42"}})
		if r.status != http.StatusOK || string(r.body) != `{"method":"POST","path":"/base/orders"}` {
			t.Errorf("%s /v1.0/bindings/api = %d %s, want 200 with the upstream's body", method, r.status, r.body)
		}
		if got := r.header.Get("metadata.statusCode"); got != "200" {
			t.Errorf("%s /v1.0/bindings/api: header metadata.statusCode = %q, want 200 (headers %v)", method, got, r.header)
		}
		got := up.last(t)
		if got.method != http.MethodPost || got.path != "/base/orders" || string(got.body) != `{"order":1}` || got.header.Get("X-Request-Id") != "42" {
			t.Errorf("upstream got %s %s %q X-Request-Id=%q, want POST /base/orders {\"order\":1} 42", got.method, got.path, got.body, got.header.Get("X-Request-Id"))
		}
	}

	client := sc.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ev, err := client.InvokeBinding(ctx, &dapr.InvokeBindingRequest{Name: "api", Operation: "get", Metadata: map[string]string{"path": "items/7"}})
	if err != nil {
		t.Fatalf("Go SDK InvokeBinding(api, get): %v", err)
	}
	if string(ev.Data) != `{"method":"GET","path":"/base/items/7"}` || ev.Metadata["statusCode"] != "200" {
		t.Errorf("Go SDK InvokeBinding(api, get) = %s %v", ev.Data, ev.Metadata)
	}
	if err := client.InvokeOutputBinding(ctx, &dapr.InvokeBindingRequest{Name: "api", Operation: "delete", Metadata: map[string]string{"path": "items/7"}}); err != nil {
		t.Errorf("Go SDK InvokeOutputBinding(api, delete): %v", err)
	} else if got := up.last(t); got.method != http.MethodDelete || got.path != "/base/items/7" {
		t.Errorf("upstream got %s %s, want DELETE /base/items/7", got.method, got.path)
	}

	// Every failure is 500 ERR_INVOKE_OUTPUT_BINDING, an unknown binding too.
	for _, tc := range []struct {
		name, binding string
		body          map[string]any
	}{
		{"upstream 404", "api", map[string]any{"operation": "get", "metadata": map[string]string{"path": "missing"}}},
		{"unknown operation", "api", map[string]any{"operation": "frobnicate"}},
		{"unknown binding", "nosuchbinding", map[string]any{"operation": "get"}},
	} {
		wantError(t, tc.name, do(t, http.MethodPost, sc.URL("/v1.0/bindings/"+tc.binding), tc.body),
			http.StatusInternalServerError, "ERR_INVOKE_OUTPUT_BINDING")
	}
	if _, err := client.InvokeBinding(ctx, &dapr.InvokeBindingRequest{Name: "nosuchbinding", Operation: "get"}); err == nil {
		t.Errorf("Go SDK InvokeBinding of an unknown binding succeeded")
	}
}
