package resiliency

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/resources"
)

// budgetProvider loads a retry policy with maxRetries 3 and the given
// budget YAML ("" = none) for app b, through the resource loader.
func budgetProvider(t *testing.T, budgetYAML string, clk *fakeClock, rec *recorder) *Provider {
	t.Helper()
	dir := t.TempDir()
	if budgetYAML != "" {
		budgetYAML = "\n        budget: " + budgetYAML
	}
	writeFile(t, dir, "resiliency.yaml", `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: { name: budgets }
spec:
  policies:
    retries:
      r:
        duration: 10ms
        maxRetries: 3`+budgetYAML+`
  targets:
    apps:
      b: { retry: r }
`)
	set, err := resources.Load(t.Context(), []string{dir}, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(set.Resiliencies, "a", withClock(clk), WithObserver(rec))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRetryBudgetCapsAmplification(t *testing.T) {
	const requests = 100
	tests := []struct {
		name         string
		budget       string
		wantAttempts int
	}{
		{"no budget: every request retried 3 times", "", 4 * requests},
		{"20% and no reserve", "{ percent: 20, minRetriesPerSecond: 0 }", requests + 20},
		{"0% with a reserve of 1/s over the 10s window", "{ percent: 0, minRetriesPerSecond: 1 }", requests + 10},
		{"defaults: 20% + 3/s", "{}", requests + 20 + 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			rec := newRecorder()
			p := budgetProvider(t, tt.budget, clk, rec)
			c := &counter{errs: repeat(httpErr(503), 1<<20)}
			for range requests {
				if err := p.App("b").Execute(t.Context(), c.op); err == nil {
					t.Fatal("a failing op succeeded")
				}
			}
			// The fake clock moves 10ms per retry: every request here is
			// inside one 10s window.
			if c.n() != tt.wantAttempts {
				t.Errorf("%d attempts for %d requests, want %d", c.n(), requests, tt.wantAttempts)
			}
			if tt.budget != "" && rec.exhausted["apps.b"] == 0 {
				t.Error("observer never told the budget was exhausted")
			}
		})
	}
}

func TestRetryBudgetConcurrent(t *testing.T) {
	clk := newFakeClock()
	p := budgetProvider(t, "{ percent: 10, minRetriesPerSecond: 0 }", clk, newRecorder())
	c := &counter{errs: repeat(errors.New("down"), 1<<20)}
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() { _ = p.App("b").Execute(t.Context(), c.op) })
	}
	wg.Wait()
	if c.n() > 200+20 {
		t.Errorf("%d attempts for 200 concurrent requests; a 10%% budget allows at most 220", c.n())
	}
}

func TestRetryBudgetRefillsOverTime(t *testing.T) {
	b := newBudget(budgetSpec{percent: 50, minPerSecond: 0})
	now := time.Unix(1000, 0)
	for range 4 {
		b.deposit(now)
	}
	got := 0
	for got < 100 && b.withdraw(now) {
		got++
	}
	if got != 2 {
		t.Fatalf("4 requests at 50%%: %d retries, want 2", got)
	}
	// Ten seconds later the old requests and retries have left the window.
	later := now.Add(budgetWindow)
	if b.withdraw(later) {
		t.Error("retry allowed with no request in the window")
	}
	b.deposit(later)
	b.deposit(later)
	if !b.withdraw(later) || b.withdraw(later) {
		t.Error("want exactly one retry for two new requests")
	}
}

func TestRetryBudgetPerTarget(t *testing.T) {
	clk := newFakeClock()
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: { name: r }
spec:
  policies:
    retries:
      DefaultRetryPolicy: { duration: 0s, maxRetries: 1, budget: { percent: 0, minRetriesPerSecond: 0.1 } }
`)
	set, err := resources.Load(t.Context(), []string{dir}, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Build(set.Resiliencies, "a", withClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	// 0.1/s over 10s = one retry per target: each app has its own.
	for i := range 3 {
		c := &counter{errs: repeat(errors.New("x"), 10)}
		for range 3 {
			_ = p.App(fmt.Sprint("app", i)).Execute(t.Context(), c.op)
		}
		if c.n() != 4 {
			t.Errorf("app%d: %d attempts, want 3 + 1 retry", i, c.n())
		}
	}
}
