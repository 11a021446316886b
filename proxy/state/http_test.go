package state

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
)

func (f *fixture) mux() *http.ServeMux {
	m := http.NewServeMux()
	f.api.RegisterHTTP(m)
	return m
}

// do serves one request; hdr is name, value pairs.
func do(t testing.TB, h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// wantErr checks a Dapr error answer; msg, if set, must be in the message.
func wantErr(t testing.TB, w *httptest.ResponseRecorder, status int, code, msg string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	var b struct{ ErrorCode, Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if b.ErrorCode != code {
		t.Fatalf("errorCode %s, want %s (message %q)", b.ErrorCode, code, b.Message)
	}
	if !strings.Contains(b.Message, msg) {
		t.Fatalf("message %q does not contain %q", b.Message, msg)
	}
}

func wantStatus(t testing.TB, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
}

// TestHTTPErrors covers each route's error answers, one request each.
func TestHTTPErrors(t *testing.T) {
	f := newFixture(t)
	h := f.mux()
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code, msg                string
	}{
		{"get unknown store", "GET", "/v1.0/state/nope/k", "", nil, 400, "ERR_STATE_STORE_NOT_FOUND", "state store nope is not found"},
		{"save unknown store", "POST", "/v1.0/state/nope", `[]`, nil, 400, "ERR_STATE_STORE_NOT_FOUND", "nope"},
		{"delete unknown store", "DELETE", "/v1.0/state/nope/k", "", nil, 400, "ERR_STATE_STORE_NOT_FOUND", "nope"},
		{"bulk unknown store", "POST", "/v1.0/state/nope/bulk", `{}`, nil, 400, "ERR_STATE_STORE_NOT_FOUND", "nope"},
		{"tx unknown store", "POST", "/v1.0/state/nope/transaction", `{}`, nil, 400, "ERR_STATE_STORE_NOT_FOUND", "nope"},
		{"query unknown store", "POST", "/v1.0-alpha1/state/nope/query", `{}`, nil, 400, "ERR_STATE_STORE_NOT_FOUND", "nope"},

		{"get illegal key", "GET", "/v1.0/state/mem/a||b", "", nil, 400, "ERR_MALFORMED_REQUEST", "input key/keyPrefix 'a||b' can't contain '||'"},
		{"save illegal key", "POST", "/v1.0/state/mem", `[{"key":"a||b","value":1}]`, nil, 400, "ERR_MALFORMED_REQUEST", "a||b"},
		{"delete illegal key", "DELETE", "/v1.0/state/mem/a||b", "", nil, 400, "ERR_MALFORMED_REQUEST", "a||b"},
		{"bulk illegal key", "POST", "/v1.0/state/mem/bulk", `{"keys":["ok","a||b"]}`, nil, 400, "ERR_MALFORMED_REQUEST", "a||b"},
		{"tx illegal key", "POST", "/v1.0/state/mem/transaction", `{"operations":[{"operation":"delete","request":{"key":"a||b"}}]}`, nil, 400, "ERR_MALFORMED_REQUEST", "a||b"},
		{"illegal literal prefix", "GET", "/v1.0/state/bad/k", "", nil, 400, "ERR_MALFORMED_REQUEST", "a||b"},

		{"save not an array", "POST", "/v1.0/state/mem", `{"key":"k"}`, nil, 400, "ERR_MALFORMED_REQUEST", "failed deserializing HTTP body"},
		{"save bad JSON", "PUT", "/v1.0/state/mem", `[{`, nil, 400, "ERR_MALFORMED_REQUEST", ""},
		{"save without key", "POST", "/v1.0/state/mem", `[{"value":1}]`, nil, 400, "ERR_MALFORMED_REQUEST", `"key" is a required field`},
		{"save null value", "POST", "/v1.0/state/mem", `[{"key":"k","value":null}]`, nil, 500, "ERR_STATE_SAVE", "nil value"},
		{"save no value", "POST", "/v1.0/state/mem", `[{"key":"k"}]`, nil, 500, "ERR_STATE_SAVE", "nil value"},
		{"bulk bad JSON", "POST", "/v1.0/state/mem/bulk", `{"keys":`, nil, 400, "ERR_MALFORMED_REQUEST", ""},
		{"tx bad JSON", "POST", "/v1.0/state/mem/transaction", `[`, nil, 400, "ERR_MALFORMED_REQUEST", ""},

		{"tx not transactional", "POST", "/v1.0/state/plain/transaction", `{"operations":[]}`, nil, 500, "ERR_STATE_STORE_NOT_SUPPORTED", "state store plain doesn't support transactions"},
		{"tx unknown op", "POST", "/v1.0/state/mem/transaction", `{"operations":[{"operation":"merge","request":{"key":"k"}}]}`, nil, 400, "ERR_NOT_SUPPORTED_STATE_OPERATION", "operation type merge not supported"},
		{"tx upsert null", "POST", "/v1.0/state/mem/transaction", `{"operations":[{"operation":"upsert","request":{"key":"k"}}]}`, nil, 500, "ERR_STATE_TRANSACTION", "nil value"},
		{"tx too many", "POST", "/v1.0/state/small/transaction", `{"operations":[{"operation":"delete","request":{"key":"a"}},{"operation":"delete","request":{"key":"b"}},{"operation":"delete","request":{"key":"c"}}]}`, nil, 400, "ERR_STATE_STORE_TOO_MANY_TRANSACTIONS", "the transaction contains 3 operations, which is more than what the state store supports: 2"},

		{"query not supported", "POST", "/v1.0-alpha1/state/plain/query", `{}`, nil, 500, "ERR_STATE_STORE_NOT_SUPPORTED", "state store plain doesn't support query"},
		{"query bad JSON", "POST", "/v1.0-alpha1/state/mem/query", `{"filter":`, nil, 500, "ERR_STATE_QUERY", "failed to parse JSON query body"},
		{"query rejected by plugin", "POST", "/v1.0-alpha1/state/mem/query", `{"filter":{"LT":{"a":1}}}`, nil, 500, "ERR_STATE_QUERY", "unsupported filter LT"},

		{"get plugin down", "GET", "/v1.0/state/down/k", "", nil, 500, "ERR_STATE_GET", "fail to get k from state store down"},
		{"get plugin restarting", "GET", "/v1.0/state/restart/k", "", nil, 500, "ERR_STATE_GET", `fail to get k from state store restart: plugin "state-mem" is restarting`},
		{"save plugin restarting", "POST", "/v1.0/state/restart", `[{"key":"k","value":1}]`, nil, 500, "ERR_STATE_SAVE", `failed saving state in state store restart: plugin "state-mem" is restarting`},
		{"save plugin down", "POST", "/v1.0/state/down", `[{"key":"k","value":1},{"key":"j","value":2}]`, nil, 500, "ERR_STATE_SAVE", "failed saving state in state store down"},
		{"delete plugin restarting", "DELETE", "/v1.0/state/restart/k", "", nil, 500, "ERR_STATE_DELETE", `failed deleting state with key k: plugin "state-mem" is restarting`},
		{"bulk plugin restarting", "POST", "/v1.0/state/restart/bulk", `{"keys":["a","b"]}`, nil, 500, "ERR_STATE_BULK_GET", `failed getting state with keys [a b]: plugin "state-mem" is restarting`},
		{"tx plugin restarting", "POST", "/v1.0/state/restart/transaction", `{"operations":[{"operation":"delete","request":{"key":"a"}}]}`, nil, 500, "ERR_STATE_TRANSACTION", `error while executing state transaction: plugin "state-mem" is restarting`},
		{"tx plugin down", "POST", "/v1.0/state/down/transaction", `{"operations":[{"operation":"delete","request":{"key":"a"}}]}`, nil, 500, "ERR_STATE_TRANSACTION", "error while executing state transaction"},
		{"query plugin restarting", "POST", "/v1.0-alpha1/state/restart/query", `{}`, nil, 500, "ERR_STATE_QUERY", `failed query in state store restart: plugin "state-mem" is restarting`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, tc.method, tc.path, tc.body, tc.hdr...)
			wantErr(t, w, tc.status, tc.code, tc.msg)
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		})
	}
}

func TestHTTPNotConfigured(t *testing.T) {
	api := New(Config{AppID: testAppID, Stores: testStores{}})
	h := http.NewServeMux()
	api.RegisterHTTP(h)
	for _, r := range [][2]string{
		{"GET", "/v1.0/state/s/k"}, {"POST", "/v1.0/state/s"}, {"DELETE", "/v1.0/state/s/k"},
		{"POST", "/v1.0/state/s/bulk"}, {"PUT", "/v1.0/state/s/transaction"}, {"POST", "/v1.0-alpha1/state/s/query"},
	} {
		wantErr(t, do(t, h, r[0], r[1], `{}`), 500, "ERR_STATE_STORE_NOT_CONFIGURED", "state store is not configured")
	}
	// A nil Stores is "none configured" too, not a panic.
	h = http.NewServeMux()
	New(Config{}).RegisterHTTP(h)
	wantErr(t, do(t, h, "GET", "/v1.0/state/s/k", ""), 500, "ERR_STATE_STORE_NOT_CONFIGURED", "")
}

// TestHTTPValueRule: the value's raw JSON is stored (a string keeps its
// quotes), keys are prefixed with the app id, GET returns the bytes as JSON.
func TestHTTPValueRule(t *testing.T) {
	f := newFixture(t)
	h := f.mux()
	wantStatus(t, do(t, h, "POST", "/v1.0/state/mem", `[{"key":"s","value":"x"},{"key":"o","value":{"b": [1, 2.50, "é"]}},{"key":"n","value":12345678901234567890}]`), 204)
	for key, want := range map[string]string{"s": `"x"`, "o": `{"b": [1, 2.50, "é"]}`, "n": `12345678901234567890`} {
		raw, ok := f.mem.raw("myapp||" + key)
		if !ok || string(raw) != want {
			t.Errorf("stored %s = %q (found %v), want %q", key, raw, ok, want)
		}
		w := do(t, h, "GET", "/v1.0/state/mem/"+key, "")
		wantStatus(t, w, 200)
		if w.Body.String() != want || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("ETag") == "" {
			t.Errorf("GET %s: body %q, content type %q, etag %q", key, w.Body, w.Header().Get("Content-Type"), w.Header().Get("ETag"))
		}
	}
	if f.mem.lastSet != nil {
		t.Errorf("a 3-item save must use BulkSet, saw Set %v", f.mem.lastSet)
	}
	// PUT works as POST; an empty array is a no-op.
	wantStatus(t, do(t, h, "PUT", "/v1.0/state/mem", `[{"key":"p","value":true,"contentType":"application/json"}]`), 204)
	if got := f.mem.lastSet.GetContentType(); got != "application/json" {
		t.Errorf("contentType %q not passed", got)
	}
	wantStatus(t, do(t, h, "POST", "/v1.0/state/mem", `[]`), 204)
	// Missing key: 204, no body.
	w := do(t, h, "GET", "/v1.0/state/mem/missing", "")
	wantStatus(t, w, 204)
	if w.Body.Len() != 0 {
		t.Errorf("204 with body %q", w.Body)
	}
	// Path keys are unescaped.
	wantStatus(t, do(t, h, "POST", "/v1.0/state/mem", `[{"key":"a/b c","value":1}]`), 204)
	w = do(t, h, "GET", "/v1.0/state/mem/a%2Fb%20c", "")
	wantStatus(t, w, 200)
	if w.Body.String() != "1" {
		t.Errorf("escaped key: %q", w.Body)
	}
}

func TestHTTPKeyPrefixStrategies(t *testing.T) {
	f := newFixture(t)
	h := f.mux()
	for store, stored := range map[string]string{
		"mem": "myapp||k", "byname": "byname||k", "none": "k", "ns": "prod.myapp||k", "lit": "shared||k",
	} {
		t.Run(store, func(t *testing.T) {
			wantStatus(t, do(t, h, "POST", "/v1.0/state/"+store, `[{"key":"k","value":"`+store+`"}]`), 204)
			raw, ok := f.mem.raw(stored)
			if !ok || string(raw) != `"`+store+`"` {
				t.Fatalf("store key %q: %q %v", stored, raw, ok)
			}
			w := do(t, h, "POST", "/v1.0/state/"+store+"/bulk", `{"keys":["k"]}`)
			wantStatus(t, w, 200)
			if want := `[{"key":"k","data":"` + store + `","etag":`; !strings.HasPrefix(w.Body.String(), want) {
				t.Fatalf("bulk: %s, want prefix %s", w.Body, want)
			}
		})
	}
	// namespace strategy with no namespace falls back to the app id; with no
	// app id keys are not prefixed.
	for _, tc := range []struct{ app, ns, want string }{{"a", "", "a"}, {"", "prod", ""}, {"a", "n", "n.a"}} {
		if got, _ := keyPrefix("NameSpace", "s", tc.app, tc.ns); got != tc.want {
			t.Errorf("namespace prefix (app %q ns %q) = %q, want %q", tc.app, tc.ns, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{{"app||k", "k"}, {"k", "k"}, {"a||b||c", "b"}, {"||k", "k"}} {
		if got := originalKey(tc.in); got != tc.want {
			t.Errorf("originalKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHTTPETags(t *testing.T) {
	f := newFixture(t)
	h := f.mux()
	wantStatus(t, do(t, h, "POST", "/v1.0/state/mem", `[{"key":"k","value":1}]`), 204)
	etag := do(t, h, "GET", "/v1.0/state/mem/k", "").Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag header")
	}
	steps := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code, msg                string
	}{
		{"save wrong etag", "POST", "/v1.0/state/mem", `[{"key":"k","value":2,"etag":"999"}]`, nil, 409, "ERR_STATE_SAVE", "failed saving state in state store mem: possible etag mismatch. error from state store: possible etag mismatch: etag 999"},
		{"save invalid etag", "POST", "/v1.0/state/mem", `[{"key":"k","value":2,"etag":"abc"}]`, nil, 400, "ERR_STATE_SAVE", "invalid etag value"},
		{"first-write on existing key", "POST", "/v1.0/state/mem", `[{"key":"k","value":2,"options":{"concurrency":"first-write"}}]`, nil, 409, "ERR_STATE_SAVE", "etag mismatch"},
		{"bulk save with one mismatch", "POST", "/v1.0/state/mem", `[{"key":"z","value":2},{"key":"k","value":2,"etag":"999"}]`, nil, 409, "ERR_STATE_SAVE", "etag mismatch"},
		{"delete wrong If-Match", "DELETE", "/v1.0/state/mem/k", "", []string{"If-Match", "999"}, 409, "ERR_STATE_DELETE", "failed deleting state with key k: possible etag mismatch"},
		{"delete invalid If-Match", "DELETE", "/v1.0/state/mem/k", "", []string{"If-Match", "abc"}, 400, "ERR_STATE_DELETE", "failed deleting state with key k: invalid etag value"},
		{"tx wrong etag", "POST", "/v1.0/state/mem/transaction", `{"operations":[{"operation":"upsert","request":{"key":"t","value":1}},{"operation":"delete","request":{"key":"k","etag":"999"}}]}`, nil, 409, "ERR_STATE_TRANSACTION", "possible etag mismatch"},
		{"tx invalid etag", "POST", "/v1.0/state/mem/transaction", `{"operations":[{"operation":"upsert","request":{"key":"k","value":1,"etag":"x"}}]}`, nil, 400, "ERR_STATE_TRANSACTION", "invalid etag value"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			wantErr(t, do(t, h, s.method, s.path, s.body, s.hdr...), s.status, s.code, s.msg)
		})
	}
	if _, ok := f.mem.raw("myapp||t"); ok {
		t.Error("a failed transaction was partly applied")
	}
	// The right etag wins, and the new value gets a new etag.
	wantStatus(t, do(t, h, "POST", "/v1.0/state/mem", `[{"key":"k","value":3,"etag":"`+etag+`","options":{"concurrency":"first-write","consistency":"strong"}}]`), 204)
	if o := f.mem.lastSet.GetOptions(); o.GetConcurrency() != componentsv1.StateOptions_CONCURRENCY_FIRST_WRITE || o.GetConsistency() != componentsv1.StateOptions_CONSISTENCY_STRONG {
		t.Errorf("options not passed: %v", o)
	}
	wantErr(t, do(t, h, "DELETE", "/v1.0/state/mem/k", "", "If-Match", etag), 409, "ERR_STATE_DELETE", "")
	etag2 := do(t, h, "GET", "/v1.0/state/mem/k?consistency=eventual", "").Header().Get("ETag")
	if f.mem.lastGet.GetConsistency() != componentsv1.StateOptions_CONSISTENCY_EVENTUAL {
		t.Errorf("consistency not passed: %v", f.mem.lastGet)
	}
	wantStatus(t, do(t, h, "DELETE", "/v1.0/state/mem/k?concurrency=first-write&consistency=strong", "", "If-Match", etag2), 204)
	if d := f.mem.lastDel; d.GetEtag().GetValue() != etag2 || d.GetOptions().GetConcurrency() != componentsv1.StateOptions_CONCURRENCY_FIRST_WRITE || d.GetOptions().GetConsistency() != componentsv1.StateOptions_CONSISTENCY_STRONG {
		t.Errorf("delete request %v", d)
	}
	wantStatus(t, do(t, h, "GET", "/v1.0/state/mem/k", ""), 204)
	// Deleting without If-Match sends no etag (last-write).
	wantStatus(t, do(t, h, "DELETE", "/v1.0/state/mem/k", ""), 204)
	if f.mem.lastDel.GetEtag() != nil {
		t.Errorf("etag sent without If-Match: %v", f.mem.lastDel.GetEtag())
	}
}

// TestHTTPMetadataAndTTL: metadata.* query parameters reach the store, the
// store's response metadata comes back as metadata.* headers, TTL expires.
func TestHTTPMetadataAndTTL(t *testing.T) {
	f := newFixture(t)
	h := f.mux()
	wantStatus(t, do(t, h, "POST", "/v1.0/state/mem?metadata.ttlInSeconds=100&metadata.partitionKey=p1", `[{"key":"k","value":1,"metadata":{"own":"yes"}}]`), 204)
	if md := f.mem.lastSet.GetMetadata(); md["ttlInSeconds"] != "100" || md["partitionKey"] != "p1" || md["own"] != "yes" {
		t.Fatalf("set metadata %v", md)
	}
	w := do(t, h, "GET", "/v1.0/state/mem/k?metadata.partitionKey=p1", "")
	wantStatus(t, w, 200)
	if md := f.mem.lastGet.GetMetadata(); md["partitionKey"] != "p1" {
		t.Errorf("get metadata %v", md)
	}
	if got, want := w.Header().Get("metadata.ttlExpireTime"), "2023-11-14T22:15:00Z"; got != want {
		t.Errorf("metadata.ttlExpireTime header %q, want %q", got, want)
	}
	f.mem.advance(99 * time.Second)
	wantStatus(t, do(t, h, "GET", "/v1.0/state/mem/k", ""), 200)
	f.mem.advance(time.Second)
	wantStatus(t, do(t, h, "GET", "/v1.0/state/mem/k", ""), 204)

	wantStatus(t, do(t, h, "DELETE", "/v1.0/state/mem/k?metadata.partitionKey=p2", ""), 204)
	if md := f.mem.lastDel.GetMetadata(); md["partitionKey"] != "p2" {
		t.Errorf("delete metadata %v", md)
	}
}

func TestHTTPBulkGet(t *testing.T) {
	f := newFixture(t)
	h := f.mux()
	for _, store := range []string{"mem", "plain"} { // plain's plugin has no BulkGet: parallel Gets
		t.Run(store, func(t *testing.T) {
			wantStatus(t, do(t, h, "POST", "/v1.0/state/"+store, `[{"key":"a","value":{"x":1}},{"key":"b","value":"s","metadata":{"ttlInSeconds":"60"}}]`), 204)
			// A value that is not JSON (as saved over gRPC) comes back as a JSON string.
			p := map[string]*memPlugin{"mem": f.mem, "plain": f.plain}[store]
			p.mu.Lock()
			p.data["myapp||raw"] = &entry{value: []byte("not json"), version: 99}
			p.mu.Unlock()
			w := do(t, h, "PUT", "/v1.0/state/"+store+"/bulk?metadata.q=1", `{"keys":["a","missing","b","raw"],"parallelism":2,"metadata":{"m":"2"}}`)
			wantStatus(t, w, 200)
			var got []map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %s: %v", w.Body, err)
			}
			if len(got) != 4 {
				t.Fatalf("items %s", w.Body)
			}
			if got[0]["key"] != "a" || got[0]["data"].(map[string]any)["x"] != 1.0 || got[0]["etag"] == nil {
				t.Errorf("a: %v", got[0])
			}
			if _, has := got[1]["data"]; got[1]["key"] != "missing" || has || got[1]["etag"] != nil {
				t.Errorf("missing: %v", got[1])
			}
			if got[2]["data"] != "s" || got[2]["metadata"].(map[string]any)["ttlExpireTime"] == nil {
				t.Errorf("b: %v", got[2])
			}
			if got[3]["data"] != "not json" || got[3]["etag"] != "99" {
				t.Errorf("raw: %v", got[3])
			}
			if store == "mem" {
				r := f.mem.lastBulk
				if r.GetOptions().GetParallelism() != 2 || r.GetItems()[0].GetMetadata()["q"] != "1" || r.GetItems()[0].GetMetadata()["m"] != "2" {
					t.Errorf("bulk request %v", r)
				}
			}
		})
	}
	w := do(t, h, "POST", "/v1.0/state/mem/bulk", `{"keys":[]}`)
	wantStatus(t, w, 200)
	if w.Body.String() != "[]" {
		t.Errorf("empty bulk: %s", w.Body)
	}
}

func TestHTTPTransaction(t *testing.T) {
	f := newFixture(t)
	h := f.mux()
	wantStatus(t, do(t, h, "POST", "/v1.0/state/mem", `[{"key":"old","value":1}]`), 204)
	wantStatus(t, do(t, h, "POST", "/v1.0/state/mem/transaction?metadata.q=1", `{"operations":[
		{"operation":"upsert","request":{"key":"new","value":"v","metadata":{"ttlInSeconds":"5"}}},
		{"operation":"delete","request":{"key":"old"}}],"metadata":{"m":"2"}}`), 204)
	if raw, ok := f.mem.raw("myapp||new"); !ok || string(raw) != `"v"` {
		t.Errorf("upserted %q %v", raw, ok)
	}
	if _, ok := f.mem.raw("myapp||old"); ok {
		t.Error("delete not applied")
	}
	tx := f.mem.lastTx
	if tx.GetMetadata()["q"] != "1" || tx.GetMetadata()["m"] != "2" || tx.GetOperations()[0].GetSet().GetMetadata()["ttlInSeconds"] != "5" {
		t.Errorf("tx request %v", tx)
	}
	if f.mem.maxCalls != 1 {
		t.Errorf("MultiMaxSize called %d times", f.mem.maxCalls)
	}
	// Unimplemented MultiMaxSize is remembered: no second call.
	wantStatus(t, do(t, h, "POST", "/v1.0/state/mem/transaction", `{"operations":[{"operation":"delete","request":{"key":"x"}}]}`), 204)
	if f.mem.maxCalls != 1 {
		t.Errorf("MultiMaxSize called %d times after a second transaction", f.mem.maxCalls)
	}
	// Within the limit on the small store; nothing to do is 204.
	wantStatus(t, do(t, h, "POST", "/v1.0/state/small/transaction", `{"operations":[{"operation":"upsert","request":{"key":"a","value":1}},{"operation":"upsert","request":{"key":"b","value":2}}]}`), 204)
	wantStatus(t, do(t, h, "POST", "/v1.0/state/small/transaction", `{"operations":[]}`), 204)
}

func TestHTTPQuery(t *testing.T) {
	f := newFixture(t)
	h := f.mux()
	wantStatus(t, do(t, h, "POST", "/v1.0/state/mem", `[{"key":"1","value":{"city":"Oslo","n":1}},{"key":"2","value":{"city":"Rome"}},{"key":"3","value":{"city":"Oslo","n":3}}]`), 204)
	w := do(t, h, "POST", "/v1.0-alpha1/state/mem/query?metadata.contentType=application/json",
		`{"filter":{"EQ":{"city":"Oslo"}},"sort":[{"key":"n","order":"DESC"},{"key":"city"}],"page":{"limit":1}}`)
	wantStatus(t, w, 200)
	var got struct {
		Results []struct {
			Key  string
			Data map[string]any
			ETag *string
		}
		Token    string
		Metadata map[string]string
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("%s: %v", w.Body, err)
	}
	if len(got.Results) != 1 || got.Results[0].Key != "1" || got.Results[0].Data["n"] != 1.0 || got.Results[0].ETag == nil || got.Token != "1" || got.Metadata["seen"] != "yes" {
		t.Fatalf("query answer %s", w.Body)
	}
	q := f.mem.lastQuery
	if string(q.GetQuery().GetFilter()["EQ"].GetValue()) != `{"city":"Oslo"}` || q.GetMetadata()["contentType"] != "application/json" {
		t.Errorf("query filter %v", q)
	}
	if s := q.GetQuery().GetSort(); len(s) != 2 || s[0].GetKey() != "n" || s[0].GetOrder() != componentsv1.Sorting_DESC || s[1].GetOrder() != componentsv1.Sorting_ASC {
		t.Errorf("sort %v", s)
	}
	// Next page by token.
	w = do(t, h, "PUT", "/v1.0-alpha1/state/mem/query", `{"filter":{"EQ":{"city":"Oslo"}},"page":{"limit":1,"token":"1"}}`)
	wantStatus(t, w, 200)
	if !strings.Contains(w.Body.String(), `"key":"3"`) {
		t.Errorf("page 2: %s", w.Body)
	}
	// No results: 204.
	wantStatus(t, do(t, h, "POST", "/v1.0-alpha1/state/mem/query", `{"filter":{"EQ":{"city":"Paris"}}}`), 204)
}

func TestHTTPBodyTooLarge(t *testing.T) {
	f := newFixture(t)
	h := f.mux()
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16) // as the router applies --max-body-size
		h.ServeHTTP(w, r)
	})
	wantErr(t, do(t, limited, "POST", "/v1.0/state/mem", `[{"key":"k","value":"far too long for the limit"}]`), 413, "ERR_BODY_READ", "16 bytes")
}
