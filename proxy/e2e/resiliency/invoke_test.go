package resiliencye2e

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pair starts the target app behind sidecar "target" and a caller sidecar
// (no app) whose resources path holds resiliency, and waits until the caller
// reaches the target.
func pair(t *testing.T, target *app, resiliency string) (caller, callee *sidecar) {
	t.Helper()
	c := newCluster(t)
	callee = c.start(sidecarOpts{appID: "target", appPort: target.port})
	caller = c.start(sidecarOpts{appID: "caller", resources: writeResources(t, "resiliency.yaml", resiliency)})
	waitReach(t, caller, "target", target.name)
	return caller, callee
}

func TestRetryMakesFlakyCallSucceed(t *testing.T) {
	t.Parallel()
	const failures = 3
	var n atomic.Int64
	target := startApp(t, "flaky", func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) <= failures {
			status("flaky", http.StatusServiceUnavailable)(w, nil)
			return
		}
		status("flaky", http.StatusOK)(w, nil)
	})
	caller, _ := pair(t, target, `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: retries
spec:
  policies:
    retries:
      fiveTimes:
        policy: constant
        duration: 50ms
        maxRetries: 5
  targets:
    apps:
      target:
        retry: fiveTimes
`)
	r := invoke(t, caller, "target", "work/x")
	if r.status != http.StatusOK || string(r.body) != "flaky" {
		t.Fatalf("invoke through a retry policy: %d %q, want 200 \"flaky\"", r.status, r.body)
	}
	if got := target.hits.Load(); got != failures+1 {
		t.Errorf("the app saw %d attempts, want %d (%d failures, then the success)", got, failures+1, failures)
	}
	if v, ok := caller.metric(t, "outrigger_retries_total", `target="apps.target"`); !ok || v != failures {
		t.Errorf("outrigger_retries_total{target=apps.target} = %v (present %v), want %d", v, ok, failures)
	}

	// Without retries left the app's own 503 is relayed.
	n.Store(-100)
	r = invoke(t, caller, "target", "work/x")
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("invoke with retries spent: %d %q, want the app's 503", r.status, r.body)
	}
}

func TestCircuitBreakerOpensHalfOpensCloses(t *testing.T) {
	t.Parallel()
	var code atomic.Int64
	code.Store(http.StatusServiceUnavailable)
	target := startApp(t, "sick", func(w http.ResponseWriter, _ *http.Request) {
		status("sick", int(code.Load()))(w, nil)
	})
	caller, _ := pair(t, target, `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: breaker
spec:
  policies:
    circuitBreakers:
      trips:
        maxRequests: 1
        timeout: 2s
        trip: consecutiveFailures > 2
  targets:
    apps:
      target:
        circuitBreaker: trips
`)
	// Three failures reach the app; the third trips the breaker.
	for i := range 3 {
		if r := invoke(t, caller, "target", "work/x"); r.status != http.StatusServiceUnavailable {
			t.Fatalf("call %d: %d %q, want the app's 503 while the breaker is closed", i+1, r.status, r.body)
		}
	}
	if got := target.hits.Load(); got != 3 {
		t.Fatalf("the app saw %d calls, want 3", got)
	}
	opened := time.Now()
	// Open: answered at once by the caller's sidecar, with Dapr's error.
	for i := range 5 {
		r := invoke(t, caller, "target", "work/x")
		e := decodeDaprError(t, r)
		if r.status != http.StatusInternalServerError || e.ErrorCode != "ERR_DIRECT_INVOKE" || !strings.Contains(e.Message, "circuit breaker is open") {
			t.Fatalf("call %d while open: %d %q, want 500 ERR_DIRECT_INVOKE \"circuit breaker is open\"", i+1, r.status, r.body)
		}
		if r.elapsed > 200*time.Millisecond {
			t.Errorf("call %d while open took %v; an open breaker must answer at once", i+1, r.elapsed)
		}
	}
	if got := target.hits.Load(); got != 3 {
		t.Errorf("the app saw %d calls, want still 3 while the breaker is open", got)
	}
	var bs []struct {
		Target, Policy, State string
		LastTrip              time.Time
	}
	caller.admin(t, "breakers", &bs)
	found := false
	for _, b := range bs {
		if b.Target == "apps.target" {
			found = true
			if b.State != "open" || b.Policy != "trips" || b.LastTrip.IsZero() {
				t.Errorf("/breakers row for apps.target = %+v, want state open, policy trips, a last trip", b)
			}
		}
	}
	if !found {
		t.Errorf("/breakers has no row for apps.target: %+v", bs)
	}
	if v, ok := caller.metric(t, "outrigger_breaker_state", `target="apps.target"`); !ok || v != 2 {
		t.Errorf("outrigger_breaker_state{target=apps.target} = %v (present %v), want 2 (open)", v, ok)
	}
	if v, ok := caller.metric(t, "dapr_resiliency_activations_total", `policy="circuitbreaker"`, `status="open"`); !ok || v < 1 {
		t.Errorf("dapr_resiliency_activations_total{policy=circuitbreaker,status=open} = %v (present %v), want ≥ 1", v, ok)
	}

	// After the timeout one trial call goes through; success closes it.
	code.Store(http.StatusOK)
	time.Sleep(time.Until(opened.Add(2*time.Second + 100*time.Millisecond))) // the breaker's own timer: no signal to poll
	r := invoke(t, caller, "target", "work/x")
	if r.status != http.StatusOK {
		t.Fatalf("trial call after the breaker's timeout: %d %q, want 200", r.status, r.body)
	}
	if got := target.hits.Load(); got != 4 {
		t.Errorf("the app saw %d calls, want 4 (the trial call)", got)
	}
	caller.admin(t, "breakers", &bs)
	for _, b := range bs {
		if b.Target == "apps.target" && b.State != "closed" {
			t.Errorf("/breakers state after a successful trial = %q, want closed", b.State)
		}
	}
	if v, _ := caller.metric(t, "outrigger_breaker_state", `target="apps.target"`); v != 0 {
		t.Errorf("outrigger_breaker_state after closing = %v, want 0", v)
	}
	if v, ok := caller.metric(t, "dapr_resiliency_activations_total", `policy="circuitbreaker"`, `status="closed"`); !ok || v < 1 {
		t.Errorf("dapr_resiliency_activations_total{policy=circuitbreaker,status=closed} = %v (present %v), want ≥ 1", v, ok)
	}
}
