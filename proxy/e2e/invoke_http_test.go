package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pair starts apps a and b behind two sidecars of one cluster and waits until
// each side reaches the other.
func pair(t *testing.T) (sa, sb *sidecar) {
	t.Helper()
	c := newCluster(t)
	appA, appB := startHTTPApp(t, "app-a"), startHTTPApp(t, "app-b")
	sa = c.start(sidecarOpts{appID: "a", appPort: appA.port})
	sb = c.start(sidecarOpts{appID: "b", appPort: appB.port})
	ready := time.Now()
	waitInvoke(t, sa, "b", "app-b")
	waitInvoke(t, sb, "a", "app-a")
	t.Logf("both sidecars healthy; A and B reached each other %v later", time.Since(ready).Round(time.Millisecond))
	return sa, sb
}

// TestInvokeHTTP covers service invocation over HTTP between two sidecars that
// found each other by gossip: both directions, the three addressing forms and
// everything that must be forwarded unchanged.
func TestInvokeHTTP(t *testing.T) {
	t.Parallel()
	sa, sb := pair(t)

	t.Run("both ways", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			from            *sidecar
			target, wantApp string
		}{{sa, "b", "app-b"}, {sb, "a", "app-a"}} {
			body := `{"order":42,"from":"` + tc.from.appID + `"}`
			r := call(t, http.MethodPost, tc.from.URL("/v1.0/invoke/"+tc.target+"/method/process"),
				http.Header{"Content-Type": {"application/json"}}, []byte(body))
			if r.status != http.StatusOK {
				t.Fatalf("%s→%s: status %d, body %q", tc.from.appID, tc.target, r.status, r.body)
			}
			e := decodeEcho(t, r)
			if e.App != tc.wantApp || e.Method != http.MethodPost || e.Path != "/process" || e.Body != body {
				t.Errorf("%s→%s: app saw app=%q %s %s body %q; want %s POST /process body %q",
					tc.from.appID, tc.target, e.App, e.Method, e.Path, e.Body, tc.wantApp, body)
			}
			if ct := e.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s→%s: app saw Content-Type %q, want application/json", tc.from.appID, tc.target, ct)
			}
		}
	})

	t.Run("addressing forms", func(t *testing.T) {
		t.Parallel()
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("dapr-app-id:b"))
		for _, tc := range []struct {
			name string
			url  string
			hdr  http.Header
		}{
			{"path", sa.URL("/v1.0/invoke/b/method/api/orders?x=1"), nil},
			{"dapr-app-id header", sa.URL("/api/orders?x=1"), http.Header{"Dapr-App-Id": {"b"}}},
			{"basic auth header", sa.URL("/api/orders?x=1"), http.Header{"Authorization": {basic}}},
			{"basic auth in URL", "http://dapr-app-id:b@127.0.0.1:" + strconv.Itoa(sa.httpPort) + "/api/orders?x=1", nil},
		} {
			r := call(t, http.MethodGet, tc.url, tc.hdr, nil)
			if r.status != http.StatusOK {
				t.Errorf("%s: status %d body %q, want 200 from app-b", tc.name, r.status, r.body)
				continue
			}
			e := decodeEcho(t, r)
			if e.App != "app-b" || e.Method != http.MethodGet || e.Path != "/api/orders" || e.RawQuery != "x=1" {
				t.Errorf("%s: app saw app=%q %s %s?%s; want app-b GET /api/orders?x=1", tc.name, e.App, e.Method, e.Path, e.RawQuery)
			}
		}
	})

	t.Run("bodies above --max-body-size in every addressing form", func(t *testing.T) {
		t.Parallel()
		// Invocation bodies stream; the 4 MiB building-block limit must not apply.
		body := make([]byte, 9<<20)
		if _, err := io.ReadFull(dataReader(3, int64(len(body))), body); err != nil {
			t.Fatal(err)
		}
		h := newHasher()
		h.Write(body)
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("dapr-app-id:b"))
		for _, tc := range []struct {
			name string
			url  string
			hdr  http.Header
		}{
			{"path", sa.URL("/v1.0/invoke/b/method/hash"), nil},
			{"dapr-app-id header", sa.URL("/hash"), http.Header{"Dapr-App-Id": {"b"}}},
			{"basic auth", sa.URL("/hash"), http.Header{"Authorization": {basic}}},
		} {
			r := call(t, http.MethodPost, tc.url, tc.hdr, body)
			var got struct {
				SHA256 string `json:"sha256"`
				Bytes  int    `json:"bytes"`
			}
			if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil || got.SHA256 != h.sum() {
				// Regression guard: the router once applied --max-body-size to
				// invocation addressed by Basic auth.
				t.Errorf("%s: 9 MiB body: %d %.200q (app hashed %d bytes), want 200 with the body's sha256", tc.name, r.status, r.body, got.Bytes)
			}
		}
	})

	t.Run("verbs", func(t *testing.T) {
		t.Parallel()
		for _, verb := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete,
			http.MethodPatch, http.MethodHead, http.MethodOptions} {
			var body []byte
			if verb != http.MethodGet && verb != http.MethodHead && verb != http.MethodOptions {
				body = []byte("payload of " + verb)
			}
			r := call(t, verb, sa.URL("/v1.0/invoke/b/method/things/1"), nil, body)
			if r.status != http.StatusOK {
				t.Errorf("%s: status %d body %q, want 200", verb, r.status, r.body)
				continue
			}
			if got := r.header.Get("X-Echo-Method"); got != verb {
				t.Errorf("%s: app saw verb %q", verb, got)
			}
			if verb == http.MethodHead {
				if len(r.body) != 0 {
					t.Errorf("HEAD: response has a body of %d bytes", len(r.body))
				}
				continue
			}
			e := decodeEcho(t, r)
			if e.Path != "/things/1" || e.Body != string(body) {
				t.Errorf("%s: app saw path %q body %q, want /things/1 body %q", verb, e.Path, e.Body, body)
			}
		}
	})

	t.Run("raw query unchanged", func(t *testing.T) {
		t.Parallel()
		const q = "b=2&a=1&a=%2F&x=hello%20world&plus=a+b&empty=&flag&utf=%C3%A9&semi=1;2"
		for _, url := range []string{sa.URL("/v1.0/invoke/b/method/search?" + q), sa.URL("/search?" + q)} {
			hdr := http.Header{}
			if !strings.Contains(url, "/invoke/") {
				hdr.Set("dapr-app-id", "b")
			}
			e := decodeEcho(t, call(t, http.MethodGet, url, hdr, nil))
			if e.RawQuery != q {
				t.Errorf("%s: app saw query %q, want %q", url, e.RawQuery, q)
			}
		}
	})

	t.Run("request headers", func(t *testing.T) {
		t.Parallel()
		const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		hdr := http.Header{
			"X-Custom":       {"v1"},
			"X-Multi":        {"one", "two"},
			"Dapr-Api-Token": {"must-not-leak"},
			"Traceparent":    {tp},
			"Content-Type":   {"text/plain"},
		}
		r := call(t, http.MethodPost, sa.URL("/v1.0/invoke/b/method/hdr"), hdr, []byte("x"))
		e := decodeEcho(t, r)
		h := e.Header
		if h.Get("X-Custom") != "v1" {
			t.Errorf("X-Custom: app saw %q, want v1", h.Values("X-Custom"))
		}
		if got := h.Values("X-Multi"); strings.Join(got, ",") != "one,two" {
			t.Errorf("X-Multi: app saw %q, want [one two]", got)
		}
		if got := h.Values("Dapr-Api-Token"); len(got) != 0 {
			t.Errorf("dapr-api-token reached the app: %q", got)
		}
		if got := h.Get("Content-Type"); got != "text/plain" {
			t.Errorf("Content-Type: app saw %q, want text/plain", got)
		}
		if got := h.Get("Dapr-Caller-App-Id"); got != "a" {
			t.Errorf("dapr-caller-app-id: app saw %q, want a", got)
		}
		if got := h.Get("Dapr-Callee-App-Id"); got != "b" {
			t.Errorf("dapr-callee-app-id: app saw %q, want b", got)
		}
		if got := h.Get("X-Forwarded-For"); !strings.Contains(got, "127.0.0.1") {
			t.Errorf("X-Forwarded-For: app saw %q, want the caller's address 127.0.0.1", got)
		}
		if got := h.Get("X-Forwarded-Host"); got == "" {
			t.Errorf("X-Forwarded-Host missing; app saw headers %v", h)
		}
		if got := h.Get("Forwarded"); !strings.Contains(got, "for=") {
			t.Errorf("Forwarded: app saw %q, want a for= element", got)
		}
		if got := h.Get("Traceparent"); !strings.Contains(got, "4bf92f3577b34da6a3ce929d0e0e4736") {
			t.Errorf("traceparent: app saw %q, want the caller's trace id 4bf92f3577b34da6a3ce929d0e0e4736", got)
		}
	})

	t.Run("app status headers and body relayed", func(t *testing.T) {
		t.Parallel()
		for _, code := range []int{200, 201, 202, 400, 404, 409, 500, 503} {
			r := call(t, http.MethodPost, sa.URL("/v1.0/invoke/b/method/status/"+strconv.Itoa(code)), nil, []byte("{}"))
			want := "app app-b says " + strconv.Itoa(code)
			if r.status != code || string(r.body) != want {
				t.Errorf("app answered %d %q; caller got %d %q", code, want, r.status, r.body)
			}
			if got := r.header.Get("X-App-Reply"); got != "app-b" {
				t.Errorf("%d: response header X-App-Reply = %q, want app-b", code, got)
			}
			if got := r.header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
				t.Errorf("%d: response Content-Type = %q, want the app's text/plain; charset=utf-8", code, got)
			}
		}
	})

	t.Run("method with slashes", func(t *testing.T) {
		t.Parallel()
		e := decodeEcho(t, call(t, http.MethodGet, sa.URL("/v1.0/invoke/b/method/api/v1/orders/7"), nil, nil))
		if e.Path != "/api/v1/orders/7" {
			t.Errorf("app saw path %q, want /api/v1/orders/7", e.Path)
		}
	})

	t.Run("unknown app id fails fast", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		r := call(t, http.MethodPost, sa.URL("/v1.0/invoke/nosuchapp/method/process"), nil, []byte("{}"))
		took := time.Since(start)
		if took > 2*time.Second {
			t.Errorf("unknown app id took %v to fail, want < 2 s", took)
		}
		if r.status != http.StatusInternalServerError {
			t.Errorf("unknown app id: status %d body %q, want 500", r.status, r.body)
		}
		if e := decodeDaprError(t, r); e.ErrorCode != "ERR_DIRECT_INVOKE" || !strings.Contains(e.Message, "nosuchapp") {
			t.Errorf("unknown app id: error %+v, want ERR_DIRECT_INVOKE naming nosuchapp", e)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("unknown app id: Content-Type %q, want application/json", ct)
		}
	})

	t.Run("self invocation", func(t *testing.T) {
		t.Parallel()
		e := decodeEcho(t, call(t, http.MethodPost, sa.URL("/v1.0/invoke/a/method/self"), nil, []byte("me")))
		if e.App != "app-a" || e.Path != "/self" || e.Body != "me" {
			t.Errorf("A→a answered by %q path %q body %q, want app-a /self \"me\"", e.App, e.Path, e.Body)
		}
		if got := e.Header.Get("Dapr-Caller-App-Id"); got != "a" {
			t.Errorf("A→a: app saw dapr-caller-app-id %q, want a", got)
		}
	})

	t.Run("concurrent calls", func(t *testing.T) {
		t.Parallel()
		const n = 64
		errc := make(chan string, n)
		for i := range n {
			go func() {
				body := []byte("call " + strconv.Itoa(i) + strings.Repeat("x", i*1024)) // some bodies span frames
				r, err := tryCall(http.MethodPost, sa.URL("/v1.0/invoke/b/method/c/"+strconv.Itoa(i)), nil, body, 20*time.Second)
				switch {
				case err != nil:
					errc <- err.Error()
				case r.status != http.StatusOK:
					errc <- "status " + strconv.Itoa(r.status)
				default:
					var e echoReply
					if json.Unmarshal(r.body, &e) != nil || e.Body != string(body) || e.Path != "/c/"+strconv.Itoa(i) {
						errc <- "call " + strconv.Itoa(i) + " answered for path " + e.Path
					} else {
						errc <- ""
					}
				}
			}()
		}
		for range n {
			if msg := <-errc; msg != "" {
				t.Error(msg)
			}
		}
	})

	t.Run("unknown app id by header", func(t *testing.T) {
		t.Parallel()
		r := call(t, http.MethodGet, sa.URL("/api/orders"), http.Header{"Dapr-App-Id": {"nosuchapp"}}, nil)
		if e := decodeDaprError(t, r); r.status != http.StatusInternalServerError || e.ErrorCode != "ERR_DIRECT_INVOKE" {
			t.Errorf("dapr-app-id: nosuchapp: %d %+v, want 500 ERR_DIRECT_INVOKE", r.status, e)
		}
	})

	t.Run("no app id", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/api/orders", "/v1.0/invoke//method/x", "/v1.0/nosuchapi"} {
			r := call(t, http.MethodGet, sa.URL(path), nil, nil)
			if r.status != http.StatusNotFound {
				t.Errorf("GET %s: status %d body %q, want 404", path, r.status, r.body)
				continue
			}
			if e := decodeDaprError(t, r); e.ErrorCode != "ERR_DIRECT_INVOKE" {
				t.Errorf("GET %s: error %+v, want ERR_DIRECT_INVOKE", path, e)
			}
		}
	})
}
