package statee2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"testing"
)

// TestHTTPState checks the state HTTP API as a curl user sees it, on every
// store: the JSON-vs-raw value rule, 204 on a missing key, the ETag header,
// 409 on an etag mismatch, and the request errors.
func TestHTTPState(t *testing.T) {
	t.Parallel()
	s, stores := threeStores(t)
	cl := s.Client(t)
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			base := s.URL("/v1.0/state/" + st.name)
			save := func(items ...map[string]any) result {
				t.Helper()
				return do(t, http.MethodPost, base, nil, mustJSON(t, items))
			}

			// JSON-vs-raw: a JSON value is stored as JSON; GET returns it as JSON.
			for _, c := range []struct {
				key   string
				value any
				want  string
			}{
				{"str", "x", `"x"`},
				{"obj", map[string]any{"a": 1}, `{"a":1}`},
				{"num", 42, `42`},
			} {
				if r := save(map[string]any{"key": c.key, "value": c.value}); r.status != http.StatusNoContent {
					t.Fatalf("save %s: %d %s", c.key, r.status, r.body)
				}
				r := do(t, http.MethodGet, base+"/"+c.key, nil, nil)
				if r.status != http.StatusOK || string(r.body) != c.want {
					t.Errorf("GET %s = %d %q, want 200 %q", c.key, r.status, r.body, c.want)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("GET %s Content-Type %q, want application/json", c.key, ct)
				}
				if r.header.Get("ETag") == "" {
					t.Errorf("GET %s has no ETag header", c.key)
				}
			}
			// Raw bytes saved over gRPC come back byte for byte over HTTP.
			if err := cl.SaveState(context.Background(), st.name, "grpc-raw", []byte("plain text, not JSON"), nil); err != nil {
				t.Fatal(err)
			}
			if r := do(t, http.MethodGet, base+"/grpc-raw", nil, nil); string(r.body) != "plain text, not JSON" {
				t.Errorf("GET of a gRPC-saved raw value = %d %q", r.status, r.body)
			}

			// Missing key: 204, no body.
			if r := do(t, http.MethodGet, base+"/missing", nil, nil); r.status != http.StatusNoContent || len(r.body) != 0 {
				t.Errorf("GET missing = %d %q, want 204 and no body", r.status, r.body)
			}

			// ETags: a stale one is 409 ERR_STATE_SAVE; the current one works.
			etag1 := do(t, http.MethodGet, base+"/str", nil, nil).header.Get("ETag")
			save(map[string]any{"key": "str", "value": "y"})
			etag2 := do(t, http.MethodGet, base+"/str", nil, nil).header.Get("ETag")
			if etag1 == etag2 {
				t.Errorf("ETag did not change on save: %q", etag1)
			}
			r := save(map[string]any{"key": "str", "value": "z", "etag": etag1})
			wantError(t, "save with a stale etag", r, http.StatusConflict, "ERR_STATE_SAVE")
			if r := save(map[string]any{"key": "str", "value": "z", "etag": etag2}); r.status != http.StatusNoContent {
				t.Errorf("save with the current etag: %d %s", r.status, r.body)
			}
			// Delete with If-Match: stale → 409 ERR_STATE_DELETE, current → 204.
			etag3 := do(t, http.MethodGet, base+"/str", nil, nil).header.Get("ETag")
			r = do(t, http.MethodDelete, base+"/str", http.Header{"If-Match": {etag2}}, nil)
			wantError(t, "delete with a stale If-Match", r, http.StatusConflict, "ERR_STATE_DELETE")
			if r := do(t, http.MethodDelete, base+"/str", http.Header{"If-Match": {etag3}}, nil); r.status != http.StatusNoContent {
				t.Errorf("delete with the current If-Match: %d %s", r.status, r.body)
			}
			if r := do(t, http.MethodGet, base+"/str", nil, nil); r.status != http.StatusNoContent {
				t.Errorf("GET after delete = %d %q", r.status, r.body)
			}

			// Bulk get: the field is "data" (Dapr's code, not its docs).
			r = do(t, http.MethodPost, base+"/bulk", nil, []byte(`{"keys":["obj","num","missing"]}`))
			var bulk []struct {
				Key  string          `json:"key"`
				Data json.RawMessage `json:"data"`
				ETag string          `json:"etag"`
			}
			if err := json.Unmarshal(r.body, &bulk); r.status != http.StatusOK || err != nil {
				t.Fatalf("bulk get = %d %s (%v)", r.status, r.body, err)
			}
			sort.Slice(bulk, func(i, j int) bool { return bulk[i].Key < bulk[j].Key }) // missing, num, obj
			if len(bulk) != 3 || len(bulk[0].Data) != 0 || string(bulk[1].Data) != `42` || string(bulk[2].Data) != `{"a":1}` ||
				bulk[1].ETag == "" || bulk[2].ETag == "" {
				t.Errorf("bulk get = %s", r.body)
			}

			// Transaction over HTTP.
			tx := `{"operations":[{"operation":"upsert","request":{"key":"t1","value":{"v":1}}},{"operation":"delete","request":{"key":"obj"}}]}`
			if r := do(t, http.MethodPost, base+"/transaction", nil, []byte(tx)); r.status != http.StatusNoContent {
				t.Errorf("transaction: %d %s", r.status, r.body)
			}
			if r := do(t, http.MethodGet, base+"/t1", nil, nil); string(r.body) != `{"v":1}` {
				t.Errorf("after transaction t1 = %d %q", r.status, r.body)
			}
			if r := do(t, http.MethodGet, base+"/obj", nil, nil); r.status != http.StatusNoContent {
				t.Errorf("after transaction obj = %d %q, want deleted", r.status, r.body)
			}

			// Request errors.
			wantError(t, "save with || in the key", save(map[string]any{"key": "a||b", "value": 1}), http.StatusBadRequest, "ERR_MALFORMED_REQUEST")
			wantError(t, "GET with || in the key", do(t, http.MethodGet, base+"/a||b", nil, nil), http.StatusBadRequest, "ERR_MALFORMED_REQUEST")
		})
	}

	t.Run("unknown store", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct{ method, path, body string }{
			{http.MethodGet, "/v1.0/state/nope/k", ""},
			{http.MethodPost, "/v1.0/state/nope", `[{"key":"k","value":1}]`},
			{http.MethodDelete, "/v1.0/state/nope/k", ""},
			{http.MethodPost, "/v1.0/state/nope/bulk", `{"keys":["k"]}`},
			{http.MethodPost, "/v1.0/state/nope/transaction", `{"operations":[]}`},
		} {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			wantError(t, c.method+" "+c.path, do(t, c.method, s.URL(c.path), nil, body), http.StatusBadRequest, "ERR_STATE_STORE_NOT_FOUND")
		}
	})
}

// TestMetadataComponents checks that /v1.0/metadata (HTTP and the Go SDK's
// GetMetadata over gRPC) lists each state component with its type, version
// and capabilities.
func TestMetadataComponents(t *testing.T) {
	t.Parallel()
	s, _ := threeStores(t)
	want := map[string]struct {
		typ  string
		caps []string
	}{
		"sqlite": {"state.sqlite", []string{"ETAG", "TRANSACTIONAL", "TTL", "QUERY_API"}},
		"redis":  {"state.redis", []string{"ETAG", "TRANSACTIONAL", "TTL"}},
		"pg":     {"state.postgresql", []string{"ETAG", "TRANSACTIONAL", "TTL", "QUERY_API"}},
	}
	check := func(api, name, typ, version string, caps []string) {
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: unexpected component %s (%s)", api, name, typ)
			return
		}
		if typ != w.typ || version != "v1" {
			t.Errorf("%s: component %s is %s %s, want %s v1", api, name, typ, version, w.typ)
		}
		for _, c := range w.caps {
			if !slices.Contains(caps, c) {
				t.Errorf("%s: component %s capabilities %v lack %s", api, name, caps, c)
			}
		}
	}
	m := s.metadata(t)
	if m.ID != s.appID {
		t.Errorf("metadata id %q, want %q", m.ID, s.appID)
	}
	if len(m.Components) != len(want) {
		t.Errorf("HTTP metadata lists %d components, want %d: %+v", len(m.Components), len(want), m.Components)
	}
	for _, c := range m.Components {
		check("HTTP", c.Name, c.Type, c.Version, c.Capabilities)
	}
	gm, err := s.Client(t).GetMetadata(context.Background())
	if err != nil {
		t.Fatalf("Go SDK GetMetadata: %v", err)
	}
	if len(gm.RegisteredComponents) != len(want) {
		t.Errorf("gRPC metadata lists %d components, want %d", len(gm.RegisteredComponents), len(want))
	}
	for _, c := range gm.RegisteredComponents {
		check("gRPC", c.Name, c.Type, c.Version, c.Capabilities)
	}
	// Every plugin shows in the extended attributes, running, with a pid.
	for _, bin := range []string{"state-sqlite", "state-redis", "state-postgresql"} {
		if p := s.plugin(t, bin); p.PID <= 0 || p.Restarts != 0 {
			t.Errorf("plugin %s status %+v, want a pid and no restarts", bin, p)
		}
	}
}
