package resiliency

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/resources"
)

// fakeClock records sleeps and advances its time by them, at once.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	// onSleep, when set, is called with the number of sleeps so far.
	onSleep func(n int)
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	n, hook := len(c.sleeps), c.onSleep
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return ctx.Err()
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

func withClock(c clock) Option { return func(o *buildOptions) { o.clk = c } }

// recorder is an Observer that counts what it is told.
type recorder struct {
	mu        sync.Mutex
	executed  map[string]int // "target kind"
	activated map[string]int // "target kind status"
	exhausted map[string]int
	ejected   []string // "app/instance duration"
}

func newRecorder() *recorder {
	return &recorder{executed: map[string]int{}, activated: map[string]int{}, exhausted: map[string]int{}}
}

func (r *recorder) Executed(t Target, k PolicyKind, status string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.executed[fmt.Sprintf("%s %s", t, k)]++
}

func (r *recorder) Activated(t Target, k PolicyKind, status string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := fmt.Sprintf("%s %s", t, k)
	if status != "" {
		key += " " + status
	}
	r.activated[key]++
}

func (r *recorder) BudgetExhausted(t Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exhausted[t.String()]++
}

func (r *recorder) Ejected(appID, instance string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ejected = append(r.ejected, fmt.Sprintf("%s/%s %s", appID, instance, d))
}

func (r *recorder) activations(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.activated[key]
}

// load reads a testdata directory through the real resource loader.
func load(t *testing.T, dir, appID string) []resources.Resiliency {
	t.Helper()
	set, err := resources.Load(context.Background(), []string{filepath.Join("testdata", dir)}, appID, nil)
	if err != nil {
		t.Fatalf("resources.Load(%s): %v", dir, err)
	}
	return set.Resiliencies
}

// inline is a Resiliency built in memory (no file, so no extensions).
func inline(p resources.Policies, tg resources.Targets) []resources.Resiliency {
	return []resources.Resiliency{{Name: "inline", Policies: p, Targets: tg}}
}

func intp(i int) *int { return &i }

// counter is an op that fails with errs[i] on call i (nil = success) and
// succeeds once errs is exhausted.
type counter struct {
	mu    sync.Mutex
	calls int
	errs  []error
}

func (c *counter) op(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls <= len(c.errs) {
		return c.errs[c.calls-1]
	}
	return nil
}

func (c *counter) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// httpErr is an op error carrying an HTTP status.
type httpErr int

func (e httpErr) Error() string   { return fmt.Sprintf("HTTP %d", int(e)) }
func (e httpErr) HTTPStatus() int { return int(e) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
