package pubsub

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// publishFixture is a building block over one memBroker named "ps"
// (optionally with features and properties), served over HTTP.
func publishFixture(t *testing.T, features []string, props map[string]string) (*API, *memBroker, *httptest.Server) {
	t.Helper()
	mb := newMemBroker()
	conn := mb.serve(t)
	a := New(Config{AppID: "app1", Brokers: testBrokers{"ps": {Name: "ps", Conn: conn, Features: features, Properties: props}}})
	mux := http.NewServeMux()
	a.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return a, mb, srv
}

func do(t *testing.T, method, url, ct, body string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPPublishEnvelope(t *testing.T) {
	_, mb, srv := publishFixture(t, nil, nil)
	code, body := do(t, "POST", srv.URL+"/v1.0/publish/ps/orders/eu?metadata.partitionKey=k1", "application/json", `{"n":1}`,
		"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate", "x=y")
	if code != 204 {
		t.Fatalf("publish: %d %s", code, body)
	}
	got := mb.publishedOn("orders/eu")
	if len(got) != 1 {
		t.Fatalf("published %d messages on orders/eu", len(got))
	}
	var ce map[string]any
	if err := json.Unmarshal(got[0], &ce); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"source": "app1", "type": "com.dapr.event.sent", "specversion": "1.0", "datacontenttype": "application/json",
		"topic": "orders/eu", "pubsubname": "ps", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"traceid": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "x=y"}
	for k, v := range want {
		if ce[k] != v {
			t.Errorf("%s = %v, want %v", k, ce[k], v)
		}
	}
	if d, _ := ce["data"].(map[string]any); d["n"] != float64(1) {
		t.Errorf("data = %v", ce["data"])
	}
	if mb.publishMD["orders/eu"][0]["partitionKey"] != "k1" {
		t.Errorf("broker metadata = %v", mb.publishMD["orders/eu"][0])
	}

	// rawPayload: the body as it came.
	if code, body := do(t, "PUT", srv.URL+"/v1.0/publish/ps/raw?metadata.rawPayload=true", "text/plain", "just bytes"); code != 204 {
		t.Fatalf("raw publish: %d %s", code, body)
	}
	if got := mb.publishedOn("raw"); len(got) != 1 || string(got[0]) != "just bytes" {
		t.Fatalf("raw published %q", got)
	}
	// ttl without broker MESSAGE_TTL → expiration in the envelope.
	if code, body := do(t, "POST", srv.URL+"/v1.0/publish/ps/ttl?metadata.ttlInSeconds=60", "text/plain", "x"); code != 204 {
		t.Fatalf("ttl publish: %d %s", code, body)
	}
	var tce map[string]any
	_ = json.Unmarshal(mb.publishedOn("ttl")[0], &tce)
	if _, ok := tce["expiration"].(string); !ok {
		t.Errorf("no expiration: %v", tce)
	}
}

func TestPublishErrors(t *testing.T) {
	props := map[string]string{
		"publishingScopes": "app1=allowed,orders;app2=other",
		"allowedTopics":    "allowed,orders,broken,secret",
		"protectedTopics":  "secret",
	}
	_, _, srv := publishFixture(t, nil, props)
	tests := []struct {
		path, ct, body string
		code           int
		errCode        string
	}{
		{"/v1.0/publish/nope/orders", "", "x", 404, "ERR_PUBSUB_NOT_FOUND"},
		{"/v1.0/publish/ps/", "", "x", 404, "ERR_TOPIC_NAME_EMPTY"},
		{"/v1.0/publish/ps/other", "", "x", 403, "ERR_PUBSUB_FORBIDDEN"},  // not in allowedTopics
		{"/v1.0/publish/ps/secret", "", "x", 403, "ERR_PUBSUB_FORBIDDEN"}, // protected, not in app1's scope
		{"/v1.0/publish/ps/broken", "", "x", 403, "ERR_PUBSUB_FORBIDDEN"}, // app1 scoped to allowed,orders
		{"/v1.0/publish/ps/orders?metadata.rawPayload=maybe", "", "x", 400, "ERR_PUBSUB_REQUEST_METADATA"},
		{"/v1.0/publish/ps/orders?metadata.ttlInSeconds=soon", "", "x", 400, "ERR_PUBSUB_REQUEST_METADATA"},
		{"/v1.0/publish/ps/orders", "application/cloudevents+json", "not json", 500, "ERR_PUBSUB_CLOUD_EVENTS_SER"},
		{"/v1.0/publish/ps/orders", "text/plain", "FAIL", 500, "ERR_PUBSUB_PUBLISH_MESSAGE"},
		{"/v1.0-alpha1/publish/bulk/ps/orders", "application/json", "{", 400, "ERR_PUBSUB_EVENTS_SER"},
		{"/v1.0-alpha1/publish/bulk/ps/secret", "application/json", "[]", 403, "ERR_PUBSUB_FORBIDDEN"},
	}
	for _, tc := range tests {
		code, body := do(t, "POST", srv.URL+tc.path, tc.ct, tc.body)
		if code != tc.code || !strings.Contains(body, `"errorCode":"`+tc.errCode+`"`) {
			t.Errorf("%s: %d %s, want %d %s", tc.path, code, body, tc.code, tc.errCode)
		}
	}
	if code, body := do(t, "POST", srv.URL+"/v1.0/publish/ps/allowed", "", "x"); code != 204 {
		t.Errorf("scoped topic refused: %d %s", code, body)
	}

	// No pubsub at all.
	a := New(Config{AppID: "app1", Brokers: testBrokers{}})
	mux := http.NewServeMux()
	a.RegisterHTTP(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/v1.0/publish/ps/t", strings.NewReader("x")))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "ERR_PUBSUB_NOT_CONFIGURED") {
		t.Errorf("not configured: %d %s", rec.Code, rec.Body.String())
	}
	_, err := a.PublishEvent(context.Background(), &runtimev1.PublishEventRequest{PubsubName: "ps", Topic: "t"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("gRPC not configured: %v", err)
	}
}

func TestBulkPublish(t *testing.T) {
	for _, features := range [][]string{nil, {FeatureBulkPublish}} {
		a, mb, srv := publishFixture(t, features, nil)
		body := `[{"entryId":"1","event":{"a":1},"contentType":"application/json"},
			{"entryId":"2","event":"FAIL me","contentType":"text/plain"},
			{"entryId":"3","event":"aGVsbG8=","contentType":"application/octet-stream","metadata":{"k":"v"}}]`
		code, resp := do(t, "POST", srv.URL+"/v1.0-alpha1/publish/bulk/ps/bulk", "application/json", body)
		if code != 500 {
			t.Fatalf("features %v: %d %s", features, code, resp)
		}
		var r struct {
			FailedEntries []struct{ EntryID, Error string }
			ErrorCode     string
		}
		if err := json.Unmarshal([]byte(resp), &r); err != nil || r.ErrorCode != "ERR_PUBSUB_PUBLISH_MESSAGE" || len(r.FailedEntries) != 1 || r.FailedEntries[0].EntryID != "2" {
			t.Fatalf("features %v: answer %s (%v)", features, resp, err)
		}
		if n := len(mb.publishedOn("bulk")); n != 2 {
			t.Fatalf("features %v: %d published", features, n)
		}
		if (mb.bulkCalls > 0) != (len(features) > 0) {
			t.Errorf("features %v: BulkPublish called %d times", features, mb.bulkCalls)
		}
		var ce map[string]any
		for _, d := range mb.publishedOn("bulk") {
			_ = json.Unmarshal(d, &ce)
			if ce["datacontenttype"] == "application/octet-stream" && ce["data_base64"] != "aGVsbG8=" {
				t.Errorf("binary entry: %v", ce)
			}
		}
		// All good → 204.
		if code, resp := do(t, "POST", srv.URL+"/v1.0-alpha1/publish/bulk/ps/bulk", "application/json", `[{"entryId":"a","event":"x","contentType":"text/plain"}]`); code != 204 {
			t.Fatalf("ok bulk: %d %s", code, resp)
		}
		// Duplicate ids are a request error.
		if code, resp := do(t, "POST", srv.URL+"/v1.0-alpha1/publish/bulk/ps/bulk", "application/json",
			`[{"entryId":"a","event":"x","contentType":"text/plain"},{"entryId":"a","event":"y","contentType":"text/plain"}]`); code != 400 {
			t.Fatalf("duplicate ids: %d %s", code, resp)
		}

		// gRPC: failed entries listed, no error.
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
		gr, err := a.BulkPublishEventAlpha1(ctx, &runtimev1.BulkPublishRequest{PubsubName: "ps", Topic: "g", Entries: []*runtimev1.BulkPublishRequestEntry{
			{EntryId: "ok", Event: []byte(`{"x":1}`), ContentType: "application/json"},
			{EntryId: "bad", Event: []byte("FAIL"), ContentType: "text/plain"},
		}})
		if err != nil || len(gr.GetFailedEntries()) != 1 || gr.GetFailedEntries()[0].GetEntryId() != "bad" {
			t.Fatalf("gRPC bulk: %v %v", gr, err)
		}
		_ = json.Unmarshal(mb.publishedOn("g")[0], &ce)
		if ce["traceparent"] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
			t.Errorf("gRPC trace context not in the envelope: %v", ce)
		}
	}
}

func TestGRPCPublish(t *testing.T) {
	a, mb, _ := publishFixture(t, []string{FeatureMessageTTL}, map[string]string{"allowedTopics": "t"})
	_, err := a.PublishEvent(context.Background(), &runtimev1.PublishEventRequest{PubsubName: "ps", Topic: "t", Data: []byte("hi"),
		DataContentType: "text/plain", Metadata: map[string]string{"ttlInSeconds": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	var ce map[string]any
	_ = json.Unmarshal(mb.publishedOn("t")[0], &ce)
	if ce["data"] != "hi" || ce["expiration"] != nil {
		t.Errorf("envelope %v (broker has MESSAGE_TTL: no expiration expected)", ce)
	}
	for _, tc := range []struct {
		req  *runtimev1.PublishEventRequest
		code codes.Code
	}{
		{&runtimev1.PublishEventRequest{PubsubName: "x", Topic: "t"}, codes.InvalidArgument},
		{&runtimev1.PublishEventRequest{PubsubName: "ps", Topic: ""}, codes.InvalidArgument},
		{&runtimev1.PublishEventRequest{PubsubName: "", Topic: "t"}, codes.InvalidArgument},
		{&runtimev1.PublishEventRequest{PubsubName: "ps", Topic: "u"}, codes.PermissionDenied},
		{&runtimev1.PublishEventRequest{PubsubName: "ps", Topic: "t", Data: []byte("FAIL")}, codes.Internal},
	} {
		if _, err := a.PublishEvent(context.Background(), tc.req); status.Code(err) != tc.code {
			t.Errorf("%v: %v, want %v", tc.req, err, tc.code)
		}
	}
}

func TestInitMetadata(t *testing.T) {
	in := map[string]string{"redisHost": "x"}
	if got := InitMetadata(in, "app1"); got["consumerID"] != "app1" || got["redisHost"] != "x" {
		t.Errorf("default: %v", got)
	}
	if _, ok := in["consumerID"]; ok {
		t.Error("input modified")
	}
	if got := InitMetadata(map[string]string{"consumerID": " group "}, "app1"); got["consumerID"] != "group" {
		t.Errorf("explicit: %v", got)
	}
}
