package resiliency

import (
	"slices"
	"testing"
	"time"
)

// ejectorFor builds the valid fixture (appC: 3 consecutive failures, 10s
// base ejection, at most 50% ejected) with a fake clock.
func ejectorFor(t *testing.T, clk *fakeClock, rec *recorder, prev *Provider) (*Provider, *Ejector) {
	t.Helper()
	opts := []Option{withClock(clk), WithObserver(rec)}
	if prev != nil {
		opts = append(opts, Previous(prev))
	}
	p, err := Build(load(t, "valid", "app1"), "app1", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p, p.Ejector()
}

func fail(e *Ejector, inst string, n int) {
	for range n {
		e.Report("appC", inst, false)
	}
}

func TestEjectionAfterConsecutiveFailures(t *testing.T) {
	clk, rec := newFakeClock(), newRecorder()
	_, e := ejectorFor(t, clk, rec, nil)
	all := []string{"i1", "i2", "i3", "i4"}
	e.Healthy("appC", all)

	fail(e, "i1", 2)
	e.Report("appC", "i1", true) // a success resets the streak
	fail(e, "i1", 2)
	if got := e.Healthy("appC", all); len(got) != 4 {
		t.Fatalf("ejected before 3 consecutive failures: %v", got)
	}
	fail(e, "i1", 1)
	if got := e.Healthy("appC", all); !slices.Equal(got, []string{"i2", "i3", "i4"}) {
		t.Fatalf("healthy = %v, want i1 ejected", got)
	}
	if len(rec.ejected) != 1 || rec.ejected[0] != "appC/i1 10s" {
		t.Errorf("observer: %v", rec.ejected)
	}
	// Back after the base ejection time.
	clk.advance(10*time.Second + time.Millisecond)
	if got := e.Healthy("appC", all); len(got) != 4 {
		t.Fatalf("not back after 10s: %v", got)
	}
	// Ejected again at once: twice as long.
	fail(e, "i1", 3)
	clk.advance(15 * time.Second)
	if got := e.Healthy("appC", all); slices.Contains(got, "i1") {
		t.Errorf("second ejection shorter than 20s: %v", got)
	}
	if rec.ejected[1] != "appC/i1 20s" {
		t.Errorf("second ejection: %v", rec.ejected)
	}
	ej := e.Ejections()
	if len(ej) != 1 || !ej[0].Ejected || ej[0].Times != 2 {
		t.Errorf("Ejections() = %+v", ej)
	}
}

func TestEjectionBoundedByMaxPercent(t *testing.T) {
	tests := []struct {
		instances   []string
		failing     []string
		wantHealthy int
	}{
		{[]string{"a", "b", "c", "d"}, []string{"a", "b", "c", "d"}, 2}, // 50% of 4
		{[]string{"a", "b", "c"}, []string{"a", "b", "c"}, 2},           // floor(1.5) = 1
		{[]string{"a", "b"}, []string{"a", "b"}, 1},
		{[]string{"a"}, []string{"a"}, 1}, // a lone instance is never ejected
	}
	for _, tt := range tests {
		_, e := ejectorFor(t, newFakeClock(), newRecorder(), nil)
		e.Healthy("appC", tt.instances)
		for _, in := range tt.failing {
			fail(e, in, 10)
		}
		if got := e.Healthy("appC", tt.instances); len(got) != tt.wantHealthy {
			t.Errorf("%d instances all failing: healthy %v, want %d", len(tt.instances), got, tt.wantHealthy)
		}
	}
}

func TestEjectionBoundHoldsWhenInstancesLeave(t *testing.T) {
	clk := newFakeClock()
	_, e := ejectorFor(t, clk, newRecorder(), nil)
	e.Healthy("appC", []string{"a", "b", "c", "d"})
	fail(e, "a", 3)
	clk.advance(time.Second)
	fail(e, "b", 3)
	// Two instances left the cluster: only one of the two remaining may be
	// out; the one ejected last stays out.
	if got := e.Healthy("appC", []string{"a", "b"}); !slices.Equal(got, []string{"a"}) {
		t.Errorf("healthy = %v, want [a]", got)
	}
}

func TestEjectionMultiplierDecays(t *testing.T) {
	clk := newFakeClock()
	rec := newRecorder()
	_, e := ejectorFor(t, clk, rec, nil)
	e.Healthy("appC", []string{"a", "b"})
	fail(e, "a", 3) // 10s
	clk.advance(11 * time.Second)
	fail(e, "a", 3) // 20s
	clk.advance(21*time.Second + 25*time.Second)
	fail(e, "a", 3) // healthy for 2 base times: multiplier 2 → 0, so 10s again
	want := []string{"appC/a 10s", "appC/a 20s", "appC/a 10s"}
	if !slices.Equal(rec.ejected, want) {
		t.Errorf("ejections %v, want %v", rec.ejected, want)
	}
}

func TestEjectorUntrackedApp(t *testing.T) {
	_, e := ejectorFor(t, newFakeClock(), newRecorder(), nil)
	in := []string{"x", "y"}
	fail(e, "x", 100)
	e.Report("appB", "x", false) // appB has no outlier detection
	if got := e.Healthy("appB", in); !slices.Equal(got, in) {
		t.Errorf("untracked app filtered: %v", got)
	}
	// "x" of appC was reported before any Healthy call: one instance
	// known, so it may not be ejected; appB's report is not tracked.
	for _, ej := range e.Ejections() {
		if ej.AppID != "appC" || ej.Ejected {
			t.Errorf("unexpected %+v", ej)
		}
	}
}

func TestEjectionsSurviveReload(t *testing.T) {
	clk := newFakeClock()
	old, e := ejectorFor(t, clk, newRecorder(), nil)
	e.Healthy("appC", []string{"a", "b"})
	fail(e, "a", 3)
	_, e2 := ejectorFor(t, clk, newRecorder(), old)
	if got := e2.Healthy("appC", []string{"a", "b"}); !slices.Equal(got, []string{"b"}) {
		t.Errorf("after reload healthy = %v, want [b]", got)
	}
}

func TestHealthyInstancesForgotten(t *testing.T) {
	_, e := ejectorFor(t, newFakeClock(), newRecorder(), nil)
	e.Healthy("appC", []string{"a", "b"})
	fail(e, "a", 1)
	e.Report("appC", "a", true)
	if n := len(e.Ejections()); n != 0 {
		t.Errorf("a healthy instance is still remembered (%d)", n)
	}
}
