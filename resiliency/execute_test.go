package resiliency

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/resources"
)

// appPolicy builds a provider whose app "b" uses retry policy r (and
// optionally timeout "t" = timeout) with a fake clock.
func appPolicy(t *testing.T, r resources.Retry, timeout string, opts ...Option) (*Provider, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	pol := resources.Policies{Retries: map[string]resources.Retry{"r": r}}
	names := resources.PolicyNames{Retry: "r"}
	if timeout != "" {
		pol.Timeouts = map[string]string{"t": timeout}
		names.Timeout = "t"
	}
	p, err := Build(inline(pol, resources.Targets{Apps: map[string]resources.EndpointPolicyNames{"b": {PolicyNames: names}}}),
		"a", append([]Option{withClock(clk)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p, clk
}

func TestRetryConstant(t *testing.T) {
	boom := errors.New("connection refused")
	tests := []struct {
		name       string
		maxRetries int
		failures   int
		wantCalls  int
		wantErr    bool
	}{
		{"succeeds after two failures", 3, 2, 3, false},
		{"gives up after maxRetries", 3, 10, 4, true},
		{"no retries", 0, 1, 1, true},
		{"first call succeeds", 3, 0, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			p, clk := appPolicy(t, resources.Retry{Duration: "200ms", MaxRetries: intp(tt.maxRetries)}, "", WithObserver(rec))
			c := &counter{errs: repeat(boom, tt.failures)}
			err := p.App("b").Execute(t.Context(), c.op)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, boom)) {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if c.n() != tt.wantCalls {
				t.Errorf("%d calls, want %d", c.n(), tt.wantCalls)
			}
			for _, d := range clk.slept() {
				if d != 200*time.Millisecond {
					t.Errorf("slept %v, want the constant 200ms", d)
				}
			}
			if got := rec.activations("apps.b retry"); got != tt.wantCalls-1 {
				t.Errorf("observer saw %d retries, want %d", got, tt.wantCalls-1)
			}
		})
	}
}

func TestRetryAttemptNumberInContext(t *testing.T) {
	p, _ := appPolicy(t, resources.Retry{MaxRetries: intp(2)}, "")
	var seen []int
	_ = p.App("b").Execute(t.Context(), func(ctx context.Context) error {
		seen = append(seen, Attempt(ctx))
		return errors.New("x")
	})
	if len(seen) != 3 || seen[0] != 1 || seen[2] != 3 {
		t.Errorf("attempts seen %v, want [1 2 3]", seen)
	}
	if Attempt(t.Context()) != 0 {
		t.Error("Attempt outside Execute is not 0")
	}
}

func TestRetryExponentialBackoff(t *testing.T) {
	p, clk := appPolicy(t, resources.Retry{Policy: "exponential", MaxInterval: "3s", MaxRetries: intp(12)}, "")
	_ = p.App("b").Execute(t.Context(), (&counter{errs: repeat(errors.New("x"), 100)}).op)
	sleeps := clk.slept()
	if len(sleeps) != 12 {
		t.Fatalf("%d sleeps, want 12", len(sleeps))
	}
	base := float64(500 * time.Millisecond)
	for i, d := range sleeps {
		lo, hi := time.Duration(base*0.5), time.Duration(base*1.5)
		if d < lo || d > hi {
			t.Errorf("sleep %d = %v, want within [%v, %v]", i, d, lo, hi)
		}
		base = min(base*1.5, float64(3*time.Second))
		if d > 3*time.Second {
			t.Errorf("sleep %d = %v exceeds maxInterval", i, d)
		}
	}
}

func TestRetryForeverStopsWithContext(t *testing.T) {
	p, clk := appPolicy(t, resources.Retry{Duration: "1s", MaxRetries: intp(-1)}, "")
	ctx, cancel := context.WithCancel(t.Context())
	clk.onSleep = func(n int) {
		if n == 50 {
			cancel()
		}
	}
	boom := errors.New("boom")
	c := &counter{errs: repeat(boom, 1000)}
	err := p.App("b").Execute(ctx, c.op)
	if !errors.Is(err, boom) || c.n() != 50 {
		t.Errorf("err %v after %d calls; want the last op error after 50", err, c.n())
	}
}

func TestRetryDecisions(t *testing.T) {
	tests := []struct {
		name      string
		http      string // matching.httpStatusCodes ("" = none)
		grpc      string
		err       error
		opts      []ExecOption
		wantCalls int
	}{
		{name: "5xx retried", err: httpErr(503), wantCalls: 3},
		{name: "4xx not retried", err: httpErr(404), wantCalls: 1},
		{name: "429 retried", err: httpErr(429), wantCalls: 3},
		{name: "gRPC Unavailable retried", err: status.Error(codes.Unavailable, "down"), wantCalls: 3},
		{name: "gRPC FailedPrecondition (etag) not retried", err: status.Error(codes.FailedPrecondition, "etag"), wantCalls: 1},
		{name: "plain error retried", err: errors.New("dial tcp: refused"), wantCalls: 3},
		{name: "matching: listed 5xx retried", http: "429,502-503", err: httpErr(503), wantCalls: 3},
		{name: "matching: unlisted 5xx not retried", http: "429,502-503", err: httpErr(500), wantCalls: 1},
		{name: "matching: listed 4xx retried", http: "404", err: httpErr(404), wantCalls: 3},
		{name: "matching: gRPC list", grpc: "14", err: status.Error(codes.Internal, "x"), wantCalls: 1},
		{name: "matching: gRPC listed", grpc: "5,14", err: status.Error(codes.NotFound, "x"), wantCalls: 3},
		{name: "matching: HTTP list ignores plain errors", http: "503", err: errors.New("refused"), wantCalls: 3},
		{name: "permanent", err: Permanent(httpErr(503)), wantCalls: 1},
		{name: "not replayable", err: httpErr(503), opts: []ExecOption{Replayable(false)}, wantCalls: 1},
		{name: "custom classifier", err: errors.New("odd"), wantCalls: 1,
			opts: []ExecOption{Classify(func(error) (bool, int, codes.Code) { return false, 0, codes.OK })}},
		{name: "custom classifier status used by matching", http: "418", err: errors.New("teapot"), wantCalls: 3,
			opts: []ExecOption{Classify(func(error) (bool, int, codes.Code) { return false, 418, codes.OK })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "r.yaml", `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: { name: r }
spec:
  policies:
    retries:
      r:
        duration: 0s
        maxRetries: 2
        matching: { httpStatusCodes: "`+tt.http+`", gRPCStatusCodes: "`+tt.grpc+`" }
  targets:
    apps:
      b: { retry: r }
`)
			set, err := resources.Load(t.Context(), []string{dir}, "a", nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Build(set.Resiliencies, "a", withClock(newFakeClock()))
			if err != nil {
				t.Fatal(err)
			}
			c := &counter{errs: repeat(tt.err, 10)}
			err = p.App("b").Execute(t.Context(), c.op, tt.opts...)
			if c.n() != tt.wantCalls {
				t.Errorf("%d calls, want %d", c.n(), tt.wantCalls)
			}
			if !errors.Is(err, tt.err) && !errors.Is(tt.err, err) {
				t.Errorf("err = %v, want the op's %v", err, tt.err)
			}
		})
	}
}

func TestBuiltInServiceRetriesOnlyBetweenSidecars(t *testing.T) {
	p, err := Build(nil, "a", withClock(newFakeClock()))
	if err != nil {
		t.Fatal(err)
	}
	pol := p.App("anyone")
	if !pol.HasRetries() || pol.Target().String() != "apps.anyone" {
		t.Fatalf("default app policy: retries %v target %s", pol.HasRetries(), pol.Target())
	}
	tests := []struct {
		err       error
		wantCalls int
	}{
		{status.Error(codes.Unavailable, "sidecar down"), 4},
		{status.Error(codes.Unauthenticated, "token"), 4},
		{status.Error(codes.Internal, "app error"), 1},
		{httpErr(503), 1}, // the app's own answer
		{errors.New("plain"), 1},
	}
	for _, tt := range tests {
		c := &counter{errs: repeat(tt.err, 10)}
		_ = pol.Execute(t.Context(), c.op)
		if c.n() != tt.wantCalls {
			t.Errorf("%v: %d calls, want %d", tt.err, c.n(), tt.wantCalls)
		}
	}
}

func TestTimeoutPerAttempt(t *testing.T) {
	rec := newRecorder()
	p, _ := appPolicy(t, resources.Retry{Duration: "0", MaxRetries: intp(2)}, "20ms", WithObserver(rec))
	c := &counter{}
	start := time.Now()
	err := p.App("b").Execute(t.Context(), func(ctx context.Context) error {
		_ = c.op(ctx)
		if Attempt(ctx) < 3 {
			<-ctx.Done() // a slow app
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("third attempt should succeed: %v", err)
	}
	if c.n() != 3 {
		t.Errorf("%d calls, want 3", c.n())
	}
	if el := time.Since(start); el < 40*time.Millisecond || el > 2*time.Second {
		t.Errorf("took %v; want two 20ms timeouts", el)
	}
	if got := rec.activations("apps.b timeout"); got != 2 {
		t.Errorf("observer saw %d timeouts, want 2", got)
	}

	// Every attempt slow: the error says timeout and is a deadline.
	err = p.App("b").Execute(t.Context(), func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrTimeout and DeadlineExceeded", err)
	}
}

func TestCallerCancelIsNotRetriedOrCounted(t *testing.T) {
	p, err := Build(inline(resources.Policies{
		Retries:         map[string]resources.Retry{"r": {Duration: "0", MaxRetries: intp(5)}},
		CircuitBreakers: map[string]resources.CircuitBreaker{"cb": {Trip: "consecutiveFailures >= 1"}},
	}, resources.Targets{Apps: map[string]resources.EndpointPolicyNames{"b": {PolicyNames: resources.PolicyNames{Retry: "r", CircuitBreaker: "cb"}}}}),
		"a", withClock(newFakeClock()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	c := &counter{}
	err = p.App("b").Execute(ctx, func(ctx context.Context) error {
		_ = c.op(ctx)
		cancel()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || c.n() != 1 {
		t.Errorf("err %v after %d calls", err, c.n())
	}
	if s := p.Snapshot(); len(s) != 1 || s[0].State != StateClosed || s[0].Counts.TotalFailures != 0 {
		t.Errorf("a caller's cancel touched the breaker: %+v", s)
	}
}
