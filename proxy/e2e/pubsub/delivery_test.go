package pubsube2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// pubSub starts a publisher sidecar (no app) and a subscriber sidecar in
// front of an in-process app subscribing programmatically to topic on
// route /events (with dead-letter topic dlq if not empty, which it also
// subscribes to on /dlq), both on the broker's component.
func pubSub(t *testing.T, b broker, topic, dlq string, reply func(delivery, int) answer) (pub, sub *sidecar, a *app) {
	t.Helper()
	cleanupTopics(t, topic)
	res := resources(t, b.yaml(t, nil))
	subs := []map[string]any{{"pubsubname": "pubsub", "topic": topic, "route": "/events"}}
	if dlq != "" {
		cleanupTopics(t, dlq)
		subs[0]["deadLetterTopic"] = dlq
		subs = append(subs, map[string]any{"pubsubname": "pubsub", "topic": dlq, "route": "/dlq"})
	}
	a = startApp(t, subs, reply)
	sub = startSidecar(t, sidecarOpts{appID: e2etest.Uniq("sub-"), appPort: a.port, resources: res})
	waitSubscribed(t, sub, topic)
	pub = startSidecar(t, sidecarOpts{appID: e2etest.Uniq("pub-"), resources: res})
	return pub, sub, a
}

// waitSubscribed waits until the sidecar's metadata lists a subscription
// to topic.
func waitSubscribed(t *testing.T, s *sidecar, topic string) {
	t.Helper()
	e2etest.WaitFor(t, 10*time.Second, s.appID+" subscribed to "+topic, func() bool {
		for _, sub := range s.subscriptions(t) {
			if sub["topic"] == topic {
				return true
			}
		}
		return false
	})
}

var uuidLike = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestCloudEventFields: a JSON and a text event published over HTTP reach
// a plain HTTP app as application/cloudevents+json with Dapr's envelope.
func TestCloudEventFields(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			topic := e2etest.Uniq("ce-")
			pub, _, a := pubSub(t, b, topic, "", nil)
			const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
			hdr := http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}}
			pub.publish(t, topic, "", "application/json", []byte(`{"n":1,"item":"socks"}`), hdr)
			pub.publish(t, topic, "", "text/plain", []byte(`hello`), nil)
			e2etest.WaitFor(t, 15*time.Second, "two deliveries", func() bool { return len(a.deliveries("/events")) >= 2 })

			for _, d := range a.deliveries("/events") {
				ce := d.ce
				if ct := d.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
					t.Errorf("delivery Content-Type = %q, want application/cloudevents+json", ct)
				}
				want := map[string]any{"source": pub.appID, "type": "com.dapr.event.sent", "specversion": "1.0",
					"topic": topic, "pubsubname": "pubsub"}
				for k, v := range want {
					if ce[k] != v {
						t.Errorf("event %v: %s = %v, want %v", ce["data"], k, ce[k], v)
					}
				}
				if id, _ := ce["id"].(string); !uuidLike.MatchString(id) {
					t.Errorf("id = %v, want a UUID", ce["id"])
				}
				if _, err := time.Parse(time.RFC3339, fmt.Sprint(ce["time"])); err != nil {
					t.Errorf("time = %v: %v", ce["time"], err)
				}
				switch data := ce["data"].(type) {
				case map[string]any: // the JSON event
					if data["n"] != float64(1) || data["item"] != "socks" {
						t.Errorf("data = %v, want the published object", data)
					}
					if ce["datacontenttype"] != "application/json" {
						t.Errorf("datacontenttype = %v, want application/json", ce["datacontenttype"])
					}
					tp, _ := ce["traceparent"].(string)
					if !strings.HasPrefix(tp, "00-"+traceID+"-") {
						t.Errorf("traceparent = %q, want the publisher's trace %s", tp, traceID)
					}
				case string:
					if data != "hello" || ce["datacontenttype"] != "text/plain" {
						t.Errorf("text event: data %q datacontenttype %v, want hello text/plain", data, ce["datacontenttype"])
					}
				default:
					t.Errorf("data = %#v (%T): want an object or a string", ce["data"], ce["data"])
				}
			}
		})
	}
}

// mode reads data.mode of a delivery.
func mode(d delivery) string {
	m, _ := d.ce["data"].(map[string]any)
	s, _ := m["mode"].(string)
	return s
}

// TestDeliveryOutcomes: RETRY twice then SUCCESS (three deliveries of one
// event); DROP → the dead-letter topic; RETRY until the retries run out →
// the dead-letter topic; 404 → dropped, not redelivered.
func TestDeliveryOutcomes(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			topic, dlq := e2etest.Uniq("outcome-"), e2etest.Uniq("dlq-")
			reply := func(d delivery, nth int) answer {
				if d.path != "/events" {
					return success
				}
				switch mode(d) {
				case "retry2":
					if nth < 2 {
						return answer{200, `{"status":"RETRY"}`}
					}
				case "drop":
					return answer{200, `{"status":"DROP"}`}
				case "retry-forever":
					return answer{200, `{"status":"RETRY"}`}
				case "404":
					return answer{404, `{}`}
				case "500-once":
					if nth == 0 {
						return answer{500, `oops`}
					}
				}
				return success
			}
			pub, sub, a := pubSub(t, b, topic, dlq, reply)
			waitSubscribed(t, sub, dlq)

			for i, m := range []string{"retry2", "drop", "retry-forever", "404", "500-once", "ok"} {
				pub.publish(t, topic, "", "application/json", []byte(fmt.Sprintf(`{"n":%d,"mode":%q}`, i, m)), nil)
			}
			count := func(path, m string) int {
				n := 0
				for _, d := range a.deliveries(path) {
					if mode(d) == m {
						n++
					}
				}
				return n
			}
			e2etest.WaitFor(t, 30*time.Second, "every outcome", func() bool {
				return count("/events", "retry2") >= 3 && count("/dlq", "drop") >= 1 &&
					count("/dlq", "retry-forever") >= 1 && count("/events", "404") >= 1 &&
					count("/events", "500-once") >= 2 && count("/events", "ok") >= 1
			})
			// A retry would come within the 1 s retry interval: give it 2 s.
			time.Sleep(2 * time.Second)
			want := []struct {
				path, mode string
				n          int
			}{
				{"/events", "retry2", 3}, {"/events", "drop", 1}, {"/dlq", "drop", 1},
				{"/events", "retry-forever", 4}, {"/dlq", "retry-forever", 1},
				{"/events", "404", 1}, {"/dlq", "404", 0},
				{"/events", "500-once", 2}, {"/dlq", "500-once", 0},
				{"/events", "ok", 1}, {"/dlq", "ok", 0},
			}
			for _, w := range want {
				if got := count(w.path, w.mode); got != w.n {
					t.Errorf("%s: event %q delivered %d times, want %d", w.path, w.mode, got, w.n)
				}
			}
			// Redeliveries of one event keep its id.
			ids := map[any]bool{}
			for _, d := range a.deliveries("/events") {
				if mode(d) == "retry2" {
					ids[d.ce["id"]] = true
				}
			}
			if len(ids) != 1 {
				t.Errorf("the retried event came with %d different ids, want 1: %v", len(ids), ids)
			}
			for _, d := range a.deliveries("/dlq") {
				if data, _ := d.ce["data"].(map[string]any); data == nil {
					t.Errorf("dead-lettered event has no JSON data: %v", d.ce)
				}
			}
		})
	}
}
