package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestInstancesShareLoad starts two instances of app id b (two sidecars, two
// apps) and checks that 20 calls from A land on both.
func TestInstancesShareLoad(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	appA, b1, b2 := startHTTPApp(t, "app-a"), startHTTPApp(t, "b-one"), startHTTPApp(t, "b-two")
	sa := c.start(sidecarOpts{appID: "a", appPort: appA.port})
	c.start(sidecarOpts{appID: "b", appPort: b1.port})
	c.start(sidecarOpts{appID: "b", appPort: b2.port})
	waitInvoke(t, sa, "b", "b-one", "b-two")

	hits := map[string]int{}
	for i := range 20 {
		e := decodeEcho(t, call(t, http.MethodPost, sa.URL("/v1.0/invoke/b/method/process"), nil, []byte(fmt.Sprint(i))))
		hits[e.App]++
	}
	t.Logf("20 calls: %v", hits)
	if hits["b-one"] < 5 || hits["b-two"] < 5 || hits["b-one"]+hits["b-two"] != 20 {
		t.Errorf("20 calls to b landed %v; want both instances used (≥ 5 each, round robin gives 10/10)", hits)
	}
}

// TestKilledInstanceDropped SIGKILLs one of two instances of b and checks that
// from 5 s after the kill every call succeeds on the survivor.
func TestKilledInstanceDropped(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	appA, b1, b2 := startHTTPApp(t, "app-a"), startHTTPApp(t, "survivor"), startHTTPApp(t, "victim")
	sa := c.start(sidecarOpts{appID: "a", appPort: appA.port})
	c.start(sidecarOpts{appID: "b", appPort: b1.port})
	victim := c.start(sidecarOpts{appID: "b", appPort: b2.port})
	waitInvoke(t, sa, "b", "survivor", "victim")

	victim.Kill()
	killed := time.Now()
	const budget = 5 * time.Second
	var lastBad time.Duration = -1 // offset from the kill of the last call that started and failed
	var failures []string
	var after int
	for time.Since(killed) < budget+1500*time.Millisecond {
		started := time.Since(killed)
		r, err := tryCall(http.MethodPost, sa.URL("/v1.0/invoke/b/method/process"), nil, []byte("x"), 5*time.Second)
		took := time.Since(killed) - started
		bad := ""
		switch {
		case err != nil:
			bad = err.Error()
		case r.status != http.StatusOK:
			bad = fmt.Sprintf("status %d %.200q", r.status, r.body)
		default:
			var e echoReply
			if json.Unmarshal(r.body, &e) != nil || e.App != "survivor" {
				bad = fmt.Sprintf("answered by %q", e.App)
			}
		}
		// A dropped instance is not picked at all: no call after the budget
		// should pay for a built-in retry (1 s) against the dead address.
		if bad == "" && started >= budget && took > 500*time.Millisecond {
			bad = fmt.Sprintf("succeeded but took %v (the dead instance is still being picked?)", took.Round(time.Millisecond))
		}
		if started >= budget {
			after++
		}
		if bad != "" {
			lastBad = started
			failures = append(failures, fmt.Sprintf("+%v: %s", started.Round(time.Millisecond), bad))
		}
		time.Sleep(20 * time.Millisecond) // pace the calls
	}
	t.Logf("calls failing after the kill: %d (%d calls after the 5 s budget)", len(failures), after)
	if after == 0 {
		t.Fatal("no call was made after the 5 s budget")
	}
	if lastBad >= budget {
		t.Errorf("calls still failed ≥ 5 s after SIGKILL of one instance:\n%s", strings.Join(failures, "\n"))
	}
}
