package pubsube2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// declarative starts a subscriber sidecar whose app gets the declarative
// subscriptions docs (plus the sqlite component), and a publisher sidecar.
func declarative(t *testing.T, extraMD map[string]string, docs ...string) (pub, sub *sidecar, a *app, res string) {
	t.Helper()
	res = resources(t, append([]string{sqliteYAML(t, extraMD)}, docs...)...)
	a = startApp(t, nil, nil)
	sub = startSidecar(t, sidecarOpts{appID: "subscriber", appPort: a.port, resources: res})
	pub = startSidecar(t, sidecarOpts{appID: "publisher", resources: res})
	return pub, sub, a, res
}

// TestCELRouting: a v2alpha1 Subscription's rules are CEL over the event,
// evaluated in order, the default route last.
func TestCELRouting(t *testing.T) {
	t.Parallel()
	topic := e2etest.Uniq("routed-")
	pub, sub, a, _ := declarative(t, nil, subscriptionYAML("routes", topic, "/default", [][2]string{
		{`event.data.amount > 1000`, "/big"},
		{`event.type == "com.example.vip"`, "/vip"},
		{`has(event.data.tags) && "gift" in event.data.tags`, "/gift"},
	}, "", nil, "subscriber"))
	waitSubscribed(t, sub, topic)

	cases := []struct {
		body, query, want string
	}{
		{`{"n":1,"amount":5000}`, "", "/big"},
		{`{"n":2,"amount":10}`, "", "/default"},
		{`{"n":3,"amount":10}`, "metadata.cloudevent.type=com.example.vip", "/vip"},
		{`{"n":4,"amount":1000.5}`, "", "/big"},
		{`{"n":5,"amount":2000}`, "metadata.cloudevent.type=com.example.vip", "/big"}, // first match wins
		{`{"n":6,"amount":1,"tags":["gift","red"]}`, "", "/gift"},
	}
	for _, c := range cases {
		pub.publish(t, topic, c.query, "application/json", []byte(c.body), nil)
	}
	e2etest.WaitFor(t, 15*time.Second, "every routed event", func() bool { return len(a.deliveries("")) >= len(cases) })
	got := map[string]string{}
	for _, d := range a.deliveries("") {
		data, _ := d.ce["data"].(map[string]any)
		got[fmt.Sprint(data["n"])] = d.path
	}
	for i, c := range cases {
		if p := got[strconv.Itoa(i+1)]; p != c.want {
			t.Errorf("event %s (%s): routed to %q, want %q", c.body, c.query, p, c.want)
		}
	}
	// The rules show in the metadata.
	for _, s := range sub.subscriptions(t) {
		if s["topic"] != topic {
			continue
		}
		rules, _ := s["rules"].(map[string]any)["rules"].([]any)
		if len(rules) != 4 {
			t.Errorf("metadata shows %d rules, want 4 (3 + default): %v", len(rules), s["rules"])
		}
	}
}

// TestRawPayload: events published with metadata.rawPayload=true carry the
// bytes as they are; a rawPayload subscription gets them wrapped in a
// CloudEvent with data_base64.
func TestRawPayload(t *testing.T) {
	t.Parallel()
	topic := e2etest.Uniq("raw-")
	pub, sub, a, _ := declarative(t, nil,
		subscriptionYAML("raw", topic, "/raw", nil, "", map[string]string{"rawPayload": "true"}, "subscriber"))
	waitSubscribed(t, sub, topic)
	payloads := [][]byte{{0, 1, 2, 0xff, 'b', 'i', 'n'}, []byte(`{"n":7,"raw":true}`)}
	pub.publish(t, topic, "metadata.rawPayload=true", "application/octet-stream", payloads[0], nil)
	pub.publish(t, topic, "metadata.rawPayload=true", "application/json", payloads[1], nil)
	e2etest.WaitFor(t, 15*time.Second, "two raw events", func() bool { return len(a.deliveries("/raw")) >= 2 })
	seen := map[string]bool{}
	for _, d := range a.deliveries("/raw") {
		b64, _ := d.ce["data_base64"].(string)
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || b64 == "" {
			t.Errorf("raw delivery has no valid data_base64: %v (%v)", d.ce, err)
			continue
		}
		seen[string(raw)] = true
		if d.ce["datacontenttype"] != "application/octet-stream" {
			t.Errorf("raw delivery datacontenttype = %v, want application/octet-stream", d.ce["datacontenttype"])
		}
	}
	for _, p := range payloads {
		if !seen[string(p)] {
			t.Errorf("payload %q not delivered byte for byte; got %v", p, seen)
		}
	}
}

// TestBulkPublish: POST /v1.0-alpha1/publish/bulk publishes each entry with
// its own content type (a user CloudEvent kept as it is); bad entries are
// rejected as Dapr does.
func TestBulkPublish(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			topic := e2etest.Uniq("bulk-")
			pub, _, a := pubSub(t, b, topic, "", nil)
			body := `[
			  {"entryId":"1","event":{"n":1},"contentType":"application/json"},
			  {"entryId":"2","event":"plain text","contentType":"text/plain"},
			  {"entryId":"3","event":{"specversion":"1.0","id":"user-ce-3","source":"my-source","type":"my.type","datacontenttype":"application/json","data":{"n":3}},"contentType":"application/cloudevents+json"}
			]`
			r := do(t, http.MethodPost, pub.URL("/v1.0-alpha1/publish/bulk/pubsub/"+topic), jsonHeader, []byte(body))
			if r.status != http.StatusNoContent {
				t.Fatalf("bulk publish: %d %s, want 204", r.status, r.body)
			}
			e2etest.WaitFor(t, 15*time.Second, "three bulk-published events", func() bool { return len(a.deliveries("/events")) >= 3 })
			var sawJSON, sawText, sawCE bool
			for _, d := range a.deliveries("/events") {
				switch data := d.ce["data"].(type) {
				case string:
					sawText = data == "plain text"
				case map[string]any:
					switch data["n"] {
					case float64(1):
						sawJSON = d.ce["source"] == pub.appID
					case float64(3):
						sawCE = d.ce["id"] == "user-ce-3" && d.ce["source"] == "my-source" && d.ce["type"] == "my.type" && d.ce["topic"] == topic
						if !sawCE {
							t.Errorf("user CloudEvent not kept: %v", d.ce)
						}
					}
				}
			}
			if !sawJSON || !sawText || !sawCE {
				t.Errorf("bulk entries delivered: json %v, text %v, cloudevent %v; all %v", sawJSON, sawText, sawCE, a.deliveries("/events"))
			}

			for what, bad := range map[string]string{
				"not a JSON array":   `{"entryId":"1"}`,
				"missing entryId":    `[{"event":{"n":1},"contentType":"application/json"}]`,
				"duplicate entryId":  `[{"entryId":"1","event":{"n":1},"contentType":"application/json"},{"entryId":"1","event":{"n":2},"contentType":"application/json"}]`,
				"text event as JSON": `[{"entryId":"1","event":{"n":1},"contentType":"text/plain"}]`,
			} {
				r := do(t, http.MethodPost, pub.URL("/v1.0-alpha1/publish/bulk/pubsub/"+topic), jsonHeader, []byte(bad))
				wantError(t, "bulk publish, "+what, r, http.StatusBadRequest, "ERR_PUBSUB_EVENTS_SER")
			}
		})
	}
}

// TestScoping: publishingScopes, subscriptionScopes and allowedTopics on
// the component; forbidden publishes answer 403 ERR_PUBSUB_FORBIDDEN over
// HTTP and PermissionDenied over gRPC, forbidden subscriptions are not made.
func TestScoping(t *testing.T) {
	t.Parallel()
	open, closed, other := e2etest.Uniq("open-"), e2etest.Uniq("closed-"), e2etest.Uniq("other-")
	md := map[string]string{
		"publishingScopes":   "publisher=" + open,
		"subscriptionScopes": "subscriber=" + open,
		"allowedTopics":      open + "," + closed,
	}
	a := startApp(t, []map[string]any{
		{"pubsubname": "pubsub", "topic": open, "route": "/open"},
		{"pubsubname": "pubsub", "topic": closed, "route": "/closed"},
	}, nil)
	res := resources(t, sqliteYAML(t, md))
	sub := startSidecar(t, sidecarOpts{appID: "subscriber", appPort: a.port, resources: res})
	pub := startSidecar(t, sidecarOpts{appID: "publisher", resources: res})
	free := startSidecar(t, sidecarOpts{appID: "unscoped", resources: res})
	waitSubscribed(t, sub, open)
	for _, s := range sub.subscriptions(t) {
		if s["topic"] == closed {
			t.Errorf("subscriber subscribed to %s, outside its subscriptionScopes", closed)
		}
	}

	pub.publish(t, open, "", "application/json", []byte(`{"n":1}`), nil)
	wantError(t, "publisher → topic outside its publishingScopes",
		pub.tryPublish(t, closed, "", "application/json", []byte(`{}`), nil), http.StatusForbidden, "ERR_PUBSUB_FORBIDDEN")
	wantError(t, "unscoped app → topic outside allowedTopics",
		free.tryPublish(t, other, "", "application/json", []byte(`{}`), nil), http.StatusForbidden, "ERR_PUBSUB_FORBIDDEN")
	free.publish(t, closed, "", "application/json", []byte(`{"n":2}`), nil) // allowed, and unscoped app
	wantError(t, "unknown pubsub",
		do(t, http.MethodPost, pub.URL("/v1.0/publish/nosuch/"+open), jsonHeader, []byte(`{}`)), http.StatusNotFound, "ERR_PUBSUB_NOT_FOUND")
	wantError(t, "bulk publish outside publishingScopes",
		do(t, http.MethodPost, pub.URL("/v1.0-alpha1/publish/bulk/pubsub/"+closed), jsonHeader,
			[]byte(`[{"entryId":"1","event":{},"contentType":"application/json"}]`)), http.StatusForbidden, "ERR_PUBSUB_FORBIDDEN")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := pub.Client(t).PublishEvent(ctx, "pubsub", closed, map[string]int{"n": 3})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC PublishEvent outside publishingScopes: %v, want PermissionDenied", err)
	}
	a.waitCount(t, "/open", 1, 10*time.Second)
	if n := len(a.deliveries("/closed")); n != 0 {
		t.Errorf("subscriber got %d events on %s, outside its subscriptionScopes", n, closed)
	}
}
