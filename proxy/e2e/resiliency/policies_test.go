package resiliencye2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRetryBudgetCapsAmplification(t *testing.T) {
	t.Parallel()
	target := startApp(t, "down", status("down", http.StatusServiceUnavailable))
	caller, _ := pair(t, target, `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: budget
spec:
  policies:
    retries:
      eager:
        policy: constant
        duration: 5ms
        maxRetries: 10
        budget:
          percent: 20
          minRetriesPerSecond: 0
  targets:
    apps:
      target:
        retry: eager
`)
	const calls, workers = 100, 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls / workers {
				r, err := tryCall(http.MethodPost, caller.URL(fmt.Sprintf("/v1.0/invoke/target/method/work/%d", w)), []byte("x"), 30*time.Second)
				mu.Lock()
				if err != nil {
					statuses[-1]++
				} else {
					statuses[r.status]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if statuses[http.StatusServiceUnavailable] != calls {
		t.Errorf("answers %v, want the app's 503 to every one of %d calls", statuses, calls)
	}
	// Without a budget: calls × 11 attempts. With 20%: at most calls × 1.2.
	got := target.hits.Load()
	if got < calls || got > calls*120/100+1 {
		t.Errorf("the failing app received %d requests for %d calls; a 20%% retry budget allows %d to %d (without it: %d)",
			got, calls, calls, calls*120/100, calls*11)
	}
	if v, ok := caller.metric(t, "outrigger_retry_budget_exhausted_total", `target="apps.target"`); !ok || v < 1 {
		t.Errorf("outrigger_retry_budget_exhausted_total{target=apps.target} = %v (present %v), want ≥ 1", v, ok)
	}
	t.Logf("%d calls → %d requests at the app", calls, got)
}

func TestTimeoutCutsSlowApp(t *testing.T) {
	t.Parallel()
	cancelled := make(chan time.Duration, 1)
	target := startApp(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, _ = io.Copy(io.Discard, r.Body) // net/http notices a closed connection only once the body is read
		select {
		case <-r.Context().Done():
			cancelled <- time.Since(start)
		case <-time.After(5 * time.Second):
			cancelled <- -1
		}
		status("slow", http.StatusOK)(w, r)
	})
	caller, _ := pair(t, target, `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: timeouts
spec:
  policies:
    timeouts:
      short: 300ms
  targets:
    apps:
      target:
        timeout: short
`)
	r := invoke(t, caller, "target", "work/slow")
	if r.elapsed < 300*time.Millisecond || r.elapsed > 1500*time.Millisecond {
		t.Errorf("a call cut by a 300ms timeout answered after %v, want about 300ms", r.elapsed)
	}
	e := decodeDaprError(t, r)
	if r.status != http.StatusInternalServerError || e.ErrorCode != "ERR_DIRECT_INVOKE" {
		t.Errorf("timed-out call: %d %q, want 500 ERR_DIRECT_INVOKE", r.status, r.body)
	}
	t.Logf("timed-out call: %d %s", r.status, r.body)
	if !strings.Contains(strings.ToLower(e.Message), "deadline") && !strings.Contains(strings.ToLower(e.Message), "timeout") {
		t.Errorf("timed-out call's message %q says nothing of a timeout or deadline", e.Message)
	}
	if got := target.hits.Load(); got != 1 {
		t.Errorf("the app saw %d calls, want 1 (no retry policy)", got)
	}
	// The cut reaches the app: its request's context ends too, so it can stop working.
	select {
	case d := <-cancelled:
		t.Logf("the app's request context ended after %v", d)
		if d < 0 {
			t.Errorf("the app's request ran its full 5 s: the timeout was not propagated to the target's app")
		}
	case <-time.After(2 * time.Second):
		t.Errorf("the app's request was still running 2 s after the caller timed out: the timeout does not cancel the call at the target")
	}
}

func TestOutlierEjection(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	good := startApp(t, "good", status("good", http.StatusOK))
	bad := startApp(t, "bad", status("bad", http.StatusInternalServerError))
	c.start(sidecarOpts{appID: "target", appPort: good.port})
	badSidecar := c.start(sidecarOpts{appID: "target", appPort: bad.port})
	caller := c.start(sidecarOpts{appID: "caller", resources: writeResources(t, "resiliency.yaml", `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: outliers
spec:
  policies:
    outlierDetections:
      ejectBad:
        consecutiveFailures: 3
        baseEjectionTime: 30s
        maxEjectionPercent: 50
  targets:
    apps:
      target:
        outlierDetection: ejectBad
`)})
	waitReach(t, caller, "target", "good", "bad")

	answers := map[string]int{}
	for i := range 40 {
		r := invoke(t, caller, "target", "work/x")
		answers[fmt.Sprintf("%d %s", r.status, r.body)]++
		if i >= 20 && r.status != http.StatusOK {
			t.Errorf("call %d (long after 3 failures): %d %q, want the healthy instance's 200", i+1, r.status, r.body)
		}
	}
	if got := bad.hits.Load(); got != 3 {
		t.Errorf("the failing instance received %d calls, want 3 (then ejected for 30s); answers %v", got, answers)
	}
	if got := good.hits.Load(); got != 37 {
		t.Errorf("the healthy instance received %d calls, want 37; answers %v", got, answers)
	}

	badAddr := fmt.Sprintf("127.0.0.1:%d", badSidecar.registry(t).InternalGRPCPort)
	var rows []struct {
		AppID    string `json:"appId"`
		Instance string `json:"instance"`
		Ejected  bool   `json:"ejected"`
	}
	caller.admin(t, "clusters", &rows)
	ejected := 0
	for _, r := range rows {
		if r.AppID != "target" {
			continue
		}
		if r.Ejected {
			ejected++
			if r.Instance != badAddr {
				t.Errorf("/clusters: instance %s ejected, want only the failing one %s", r.Instance, badAddr)
			}
		}
	}
	if ejected != 1 {
		t.Errorf("/clusters shows %d ejected instances of target, want 1 (%s): %+v", ejected, badAddr, rows)
	}
	if v, ok := caller.metric(t, "outrigger_ejected_instances", `app_id="target"`); !ok || v != 1 {
		t.Errorf("outrigger_ejected_instances{app_id=target} = %v (present %v), want 1", v, ok)
	}
}

func TestBadResiliencyFailsStart(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml, field string
	}{
		{"unknown policy name", `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: broken
spec:
  policies:
    retries:
      fast:
        maxRetries: 1
  targets:
    apps:
      target:
        retry: nosuchretry
`, "nosuchretry"},
		{"trip does not compile", `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: broken
spec:
  policies:
    circuitBreakers:
      cb:
        trip: consecutiveFailures >
  targets:
    apps:
      target:
        circuitBreaker: cb
`, "circuitBreakers.cb.trip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			dir := writeResources(t, "broken-resiliency.yaml", tc.yaml)
			s := c.launch(sidecarOpts{appID: "caller", resources: dir})
			select {
			case <-s.Done():
			case <-time.After(15 * time.Second):
				t.Fatalf("the sidecar still runs 15 s after start with a bad Resiliency manifest")
			}
			if s.Err() == nil {
				t.Fatalf("the sidecar exited 0 with a bad Resiliency manifest; output:\n%s", s.Out)
			}
			out := s.Out.String()
			for _, want := range []string{"broken-resiliency.yaml", tc.field} {
				if !strings.Contains(out, want) {
					t.Errorf("the error output does not name %q:\n%s", want, out)
				}
			}
		})
	}
}
