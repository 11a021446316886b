package resiliencye2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/telemetry/telemetrytest"
)

// tracingConfig writes a Configuration that samples every request and
// exports to the collector, and returns its path.
func tracingConfig(t *testing.T, col *telemetrytest.Collector) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	conf := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: tracing
spec:
  tracing:
    samplingRate: "1"
    zipkin:
      endpointAddress: %s
`, col.URL())
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// traceID is the trace id of a W3C traceparent ("00-<trace>-<span>-<flags>").
func traceID(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}

// headerLog records one header of every counted request an app receives.
type headerLog struct {
	mu   sync.Mutex
	seen []string
	body []string
}

func (l *headerLog) handler(name, header string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.seen = append(l.seen, r.Header.Get(header))
		l.mu.Unlock()
		status(name, http.StatusOK)(w, r)
	}
}

func (l *headerLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) == 0 {
		return ""
	}
	return l.seen[len(l.seen)-1]
}

// waitSpansOf waits until both services exported a span of trace id.
func waitSpansOf(t *testing.T, col *telemetrytest.Collector, id string, services ...string) []telemetrytest.Span {
	t.Helper()
	for _, svc := range services {
		col.WaitFor(t, 20*time.Second, func(s telemetrytest.Span) bool {
			return s.TraceID == id && strings.EqualFold(s.LocalEndpoint.ServiceName, svc)
		})
	}
	var out []telemetrytest.Span
	for _, s := range col.Spans() {
		if s.TraceID == id {
			out = append(out, s)
		}
	}
	return out
}

func TestTracingInvokeSharesOneTrace(t *testing.T) {
	t.Parallel()
	col := telemetrytest.NewCollector(t)
	conf := tracingConfig(t, col)
	var log headerLog
	target := startApp(t, "traced", log.handler("traced", "traceparent"))
	c := newCluster(t)
	c.start(sidecarOpts{appID: "target", appPort: target.port, config: conf})
	caller := c.start(sidecarOpts{appID: "caller", config: conf})
	waitReach(t, caller, "target", "traced")

	// The caller's sidecar starts the trace: A → B → app.
	if r := invoke(t, caller, "target", "work/order"); r.status != http.StatusOK {
		t.Fatalf("invoke: %d %q", r.status, r.body)
	}
	id := traceID(log.last())
	if id == "" {
		t.Fatalf("the app received traceparent %q, want a W3C traceparent", log.last())
	}
	spans := waitSpansOf(t, col, id, "caller", "target")
	t.Logf("trace %s: %d spans", id, len(spans))
	for _, s := range spans {
		t.Logf("  %s %s %q parent %s", s.LocalEndpoint.ServiceName, s.Kind, s.Name, s.ParentID)
	}

	// A caller's own traceparent is continued, not replaced.
	const given = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodPost, caller.URL("/v1.0/invoke/target/method/work/order"), strings.NewReader("x"))
	req.Header.Set("traceparent", "00-"+given+"-00f067aa0ba902b7-01")
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("invoke with a traceparent: %v", err)
	}
	resp.Body.Close()
	if got := traceID(log.last()); got != given {
		t.Errorf("the app received traceparent %q, want trace id %s continued", log.last(), given)
	}
	waitSpansOf(t, col, given, "caller", "target")
}

func TestTracingPublishDeliverSharesOneTrace(t *testing.T) {
	t.Parallel()
	col := telemetrytest.NewCollector(t)
	conf := tracingConfig(t, col)
	db := filepath.Join(t.TempDir(), "pubsub.db")
	component := fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.sqlite
  version: v1
  metadata:
  - name: connectionString
    value: %q
`, db)
	subscription := `apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: orders
spec:
  pubsubname: pubsub
  topic: orders
  route: /work/orders
`
	type delivery struct {
		header string
		event  map[string]any
	}
	got := make(chan delivery, 10)
	target := startApp(t, "subscriber", func(w http.ResponseWriter, r *http.Request) {
		var ce map[string]any
		_ = json.NewDecoder(r.Body).Decode(&ce)
		got <- delivery{r.Header.Get("traceparent"), ce}
		w.WriteHeader(http.StatusOK)
	})
	c := newCluster(t)
	c.start(sidecarOpts{appID: "target", appPort: target.port, config: conf,
		resources: writeResources(t, "pubsub.yaml", component, subscription)})
	caller := c.start(sidecarOpts{appID: "caller", config: conf, resources: writeResources(t, "pubsub.yaml", component)})

	const given = "0af7651916cd43dd8448eb211c80319c"
	req, _ := http.NewRequest(http.MethodPost, caller.URL("/v1.0/publish/pubsub/orders"), strings.NewReader(`{"id":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+given+"-b7ad6b7169203331-01")
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("publish: %d, want 204", resp.StatusCode)
	}
	var d delivery
	select {
	case d = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the subscriber got nothing within 20 s")
	}
	if tp, _ := d.event["traceparent"].(string); traceID(tp) != given {
		t.Errorf("delivered CloudEvent traceparent = %q, want trace id %s from the publish; event %v", tp, given, d.event)
	}
	if traceID(d.header) != given {
		t.Errorf("delivery's traceparent header = %q, want trace id %s from the publish", d.header, given)
	}
	t.Logf("delivered with traceparent header %q, CloudEvent traceparent %q", d.header, d.event["traceparent"])
	// Both sidecars export a span of the trace: the publish (caller) and the
	// delivery to the app (target).
	spans := waitSpansOf(t, col, given, "caller", "target")
	for _, s := range spans {
		t.Logf("  %s %s %q parent %s", s.LocalEndpoint.ServiceName, s.Kind, s.Name, s.ParentID)
	}
}
