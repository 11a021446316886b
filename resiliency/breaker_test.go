package resiliency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/resources"
)

func breakerProvider(t *testing.T, cb resources.CircuitBreaker, targets resources.Targets, opts ...Option) *Provider {
	t.Helper()
	p, err := Build(inline(resources.Policies{CircuitBreakers: map[string]resources.CircuitBreaker{"cb": cb}}, targets), "a", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func appTarget(names resources.PolicyNames) resources.Targets {
	return resources.Targets{Apps: map[string]resources.EndpointPolicyNames{"b": {PolicyNames: names}}}
}

func TestBreakerLifecycle(t *testing.T) {
	rec := newRecorder()
	p := breakerProvider(t, resources.CircuitBreaker{MaxRequests: 1, Timeout: "50ms", Trip: "consecutiveFailures > 2"},
		appTarget(resources.PolicyNames{CircuitBreaker: "cb"}), WithObserver(rec))
	pol := p.App("b")
	boom := httpErr(503)
	for range 3 {
		if err := pol.Execute(t.Context(), func(context.Context) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
	}
	// Open: fails fast without calling op.
	called := false
	err := pol.Execute(t.Context(), func(context.Context) error { called = true; return nil })
	if !errors.Is(err, ErrBreakerOpen) || called {
		t.Fatalf("open breaker: err %v, op called %v", err, called)
	}
	if err.Error() != "circuit breaker is open: apps.b" {
		t.Errorf("message %q", err)
	}
	s := p.Snapshot()
	if len(s) != 1 || s[0].Target != "apps.b" || s[0].Policy != "cb" || s[0].State != StateOpen || s[0].LastTrip.IsZero() {
		t.Fatalf("snapshot %+v", s)
	}
	if time.Since(s[0].LastTrip) > 5*time.Second {
		t.Errorf("last trip %v", s[0].LastTrip)
	}
	// Half-open after the timeout; a success closes it.
	waitFor(t, "half-open", func() bool { return p.Snapshot()[0].State == StateHalfOpen })
	if err := pol.Execute(t.Context(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("half-open trial: %v", err)
	}
	if st := p.Snapshot()[0].State; st != StateClosed {
		t.Errorf("state after successful trial = %s", st)
	}
	for _, k := range []string{"apps.b circuitbreaker open", "apps.b circuitbreaker half-open", "apps.b circuitbreaker closed"} {
		if rec.activations(k) != 1 {
			t.Errorf("observer: %q seen %d times, want 1", k, rec.activations(k))
		}
	}
}

func TestBreakerHalfOpenFailureReopens(t *testing.T) {
	p := breakerProvider(t, resources.CircuitBreaker{Timeout: "30ms", Trip: "consecutiveFailures >= 1"},
		appTarget(resources.PolicyNames{CircuitBreaker: "cb"}))
	pol := p.App("b")
	fail := func(context.Context) error { return errors.New("down") }
	_ = pol.Execute(t.Context(), fail)
	waitFor(t, "half-open", func() bool { return p.Snapshot()[0].State == StateHalfOpen })
	_ = pol.Execute(t.Context(), fail)
	if st := p.Snapshot()[0].State; st != StateOpen {
		t.Errorf("state after failed trial = %s, want open", st)
	}
}

func TestBreakerTripExpressions(t *testing.T) {
	tests := []struct {
		trip     string
		failures int // failing calls after 'successes' successful ones
		succ     int
		wantOpen bool
	}{
		{"", 5, 0, false}, // default: consecutiveFailures > 5
		{"", 6, 0, true},
		{"consecutiveFailures > 5.0", 6, 0, true}, // Dapr accepts doubles
		{"requests >= 10 && totalFailures * 100 / requests >= 50", 5, 5, true},
		{"requests >= 10 && totalFailures * 100 / requests >= 50", 4, 6, false},
		{"totalFailures / totalSuccesses > 1", 3, 0, false}, // division by zero: no trip
	}
	for _, tt := range tests {
		p := breakerProvider(t, resources.CircuitBreaker{Trip: tt.trip}, appTarget(resources.PolicyNames{CircuitBreaker: "cb"}))
		pol := p.App("b")
		for range tt.succ {
			_ = pol.Execute(t.Context(), func(context.Context) error { return nil })
		}
		for range tt.failures {
			_ = pol.Execute(t.Context(), func(context.Context) error { return errors.New("x") })
		}
		if open := p.Snapshot()[0].State == StateOpen; open != tt.wantOpen {
			t.Errorf("trip %q after %d ok + %d failed: open %v, want %v", tt.trip, tt.succ, tt.failures, open, tt.wantOpen)
		}
	}
}

func TestBreakerIgnoresClientErrors(t *testing.T) {
	p := breakerProvider(t, resources.CircuitBreaker{Trip: "consecutiveFailures >= 2"}, appTarget(resources.PolicyNames{CircuitBreaker: "cb"}))
	for range 5 {
		_ = p.App("b").Execute(t.Context(), func(context.Context) error { return httpErr(404) })
	}
	if s := p.Snapshot()[0]; s.State != StateClosed || s.Counts.TotalSuccesses != 5 {
		t.Errorf("404s moved the breaker: %+v", s)
	}
}

func TestBreakerStopsRetries(t *testing.T) {
	p, err := Build(inline(resources.Policies{
		Retries:         map[string]resources.Retry{"r": {Duration: "0", MaxRetries: intp(10)}},
		CircuitBreakers: map[string]resources.CircuitBreaker{"cb": {Trip: "consecutiveFailures >= 3"}},
	}, appTarget(resources.PolicyNames{Retry: "r", CircuitBreaker: "cb"})), "a", withClock(newFakeClock()))
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{errs: repeat(errors.New("down"), 100)}
	err = p.App("b").Execute(t.Context(), c.op)
	if !errors.Is(err, ErrBreakerOpen) || c.n() != 3 {
		t.Errorf("err %v after %d calls; want ErrBreakerOpen after 3", err, c.n())
	}
}

func TestActorBreakerScopes(t *testing.T) {
	tests := []struct {
		scope string
		// after actor "1" trips, is a call to actor "2" refused?
		otherRefused bool
		breakers     int
	}{
		{"type", true, 1},
		{"id", false, 2},
		{"both", true, 3}, // the type's breaker saw the same failures
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			p := breakerProvider(t, resources.CircuitBreaker{Trip: "consecutiveFailures >= 2"},
				resources.Targets{Actors: map[string]resources.ActorPolicyNames{"T": {
					PolicyNames: resources.PolicyNames{CircuitBreaker: "cb"}, CircuitBreakerScope: tt.scope,
				}}})
			for range 2 {
				_ = p.Actor("T", "1").Execute(t.Context(), func(context.Context) error { return errors.New("x") })
			}
			if err := p.Actor("T", "1").Execute(t.Context(), func(context.Context) error { return nil }); !errors.Is(err, ErrBreakerOpen) {
				t.Errorf("tripped actor not refused: %v", err)
			}
			err := p.Actor("T", "2").Execute(t.Context(), func(context.Context) error { return nil })
			if refused := errors.Is(err, ErrBreakerOpen); refused != tt.otherRefused {
				t.Errorf("other actor refused %v, want %v (%v)", refused, tt.otherRefused, err)
			}
			if n := len(p.Snapshot()); n != tt.breakers {
				t.Errorf("%d breakers, want %d: %+v", n, tt.breakers, p.Snapshot())
			}
		})
	}
}

func TestActorIDBreakersBoundedByCacheSize(t *testing.T) {
	p := breakerProvider(t, resources.CircuitBreaker{}, resources.Targets{Actors: map[string]resources.ActorPolicyNames{"T": {
		PolicyNames: resources.PolicyNames{CircuitBreaker: "cb"}, CircuitBreakerScope: "id", CircuitBreakerCacheSize: 3,
	}}})
	for _, id := range []string{"1", "2", "3", "4", "5"} {
		_ = p.Actor("T", id).Execute(t.Context(), func(context.Context) error { return nil })
	}
	s := p.Snapshot()
	if len(s) != 3 || s[0].Key != "3" || s[2].Key != "5" {
		t.Errorf("breakers %+v, want the 3 most recent ids", s)
	}
}

func TestDefaultBreakerPerApp(t *testing.T) {
	p := breakerProvider(t, resources.CircuitBreaker{Trip: "consecutiveFailures >= 1"}, resources.Targets{})
	// no default policy named: no breakers at all
	_ = p.App("x").Execute(t.Context(), func(context.Context) error { return errors.New("x") })
	if len(p.Snapshot()) != 0 {
		t.Fatalf("breaker without a policy: %+v", p.Snapshot())
	}
	p = breakerProvider(t, resources.CircuitBreaker{Trip: "consecutiveFailures >= 1"}, resources.Targets{})
	p, err := Build(inline(resources.Policies{CircuitBreakers: map[string]resources.CircuitBreaker{
		"DefaultAppCircuitBreakerPolicy": {Trip: "consecutiveFailures >= 1"},
	}}, resources.Targets{}), "a")
	if err != nil {
		t.Fatal(err)
	}
	_ = p.App("x").Execute(t.Context(), func(context.Context) error { return errors.New("x") })
	if err := p.App("y").Execute(t.Context(), func(context.Context) error { return nil }); err != nil {
		t.Errorf("app y shares x's breaker: %v", err)
	}
	s := p.Snapshot()
	if len(s) != 2 || s[0].Target != "apps.x" || s[0].State != StateOpen || s[1].State != StateClosed {
		t.Errorf("snapshot %+v", s)
	}
}

func TestHotReloadKeepsUnchangedBreakers(t *testing.T) {
	spec := func(trip string) []resources.Resiliency {
		return inline(resources.Policies{CircuitBreakers: map[string]resources.CircuitBreaker{
			"cb":                             {Trip: trip, Timeout: "1h"},
			"DefaultAppCircuitBreakerPolicy": {Trip: trip, Timeout: "1h"},
		}}, appTarget(resources.PolicyNames{CircuitBreaker: "cb"}))
	}
	old, err := Build(spec("consecutiveFailures >= 1"), "a")
	if err != nil {
		t.Fatal(err)
	}
	fail := func(context.Context) error { return errors.New("x") }
	_ = old.App("b").Execute(t.Context(), fail)
	_ = old.App("defaulted").Execute(t.Context(), fail)

	rec := newRecorder()
	same, err := Build(spec("consecutiveFailures >= 1"), "a", Previous(old), WithObserver(rec))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range same.Snapshot() {
		if s.State != StateOpen {
			t.Errorf("reload with the same config reset %s: %+v", s.Target, s)
		}
	}
	if len(same.Snapshot()) != 2 {
		t.Errorf("breakers after reload: %+v", same.Snapshot())
	}
	changed, err := Build(spec("consecutiveFailures >= 2"), "a", Previous(same))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range changed.Snapshot() {
		if s.State != StateClosed {
			t.Errorf("changed config kept old state: %+v", s)
		}
	}
}

func TestPanicInOpReleasesHalfOpenSlot(t *testing.T) {
	p := breakerProvider(t, resources.CircuitBreaker{Timeout: "20ms", Trip: "consecutiveFailures >= 1"},
		appTarget(resources.PolicyNames{CircuitBreaker: "cb"}))
	func() {
		defer func() { _ = recover() }()
		_ = p.App("b").Execute(t.Context(), func(context.Context) error { panic("boom") })
	}()
	if st := p.Snapshot()[0].State; st != StateOpen {
		t.Fatalf("a panic should count as a failure; state %s", st)
	}
}
