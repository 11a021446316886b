package resiliency

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Policy is what applies to one call of a target: per-attempt timeout,
// retries with backoff (and a retry budget), and the target's circuit
// breaker. The zero Policy runs op once, as is. Policies are cheap values:
// get one per call from the Provider.
type Policy struct {
	p       *Provider
	def     *targetDef
	st      *targetState
	info    Target
	actorID string
}

// Target is the target the policy protects.
func (pol Policy) Target() Target { return pol.info }

// HasRetries reports whether Execute may call op more than once, so the
// caller knows whether to buffer a request body for replay.
func (pol Policy) HasRetries() bool {
	return pol.def != nil && pol.def.retry != nil && pol.def.retry.maxRetries != 0
}

// ErrTimeout is wrapped by the error of an attempt cut by the target's
// timeout policy (which also wraps context.DeadlineExceeded).
var ErrTimeout = errors.New("resiliency timeout")

type timeoutError struct {
	d   time.Duration
	err error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("timed out after %s: %v", e.d, e.err)
}

func (e *timeoutError) Unwrap() []error { return []error{ErrTimeout, context.DeadlineExceeded, e.err} }

// Permanent marks err as not worth retrying (for instance, the response
// was already partly sent). Execute returns it as it is, and errors.Is /
// errors.As see through it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Classifier judges an op error: transient means the target is at fault
// and a retry may succeed (it counts as a failure for the circuit breaker);
// httpStatus (0 = none) and grpcCode (codes.OK = none) are what retry
// matching (matching.httpStatusCodes / gRPCStatusCodes) looks at.
type Classifier func(err error) (transient bool, httpStatus int, grpcCode codes.Code)

// HTTPStatuser is implemented by op errors that carry an HTTP response
// status, for DefaultClassify.
type HTTPStatuser interface{ HTTPStatus() int }

// DefaultClassify is the Classifier used without the Classify option:
//   - context.Canceled: not transient (the caller gave up);
//   - context.DeadlineExceeded: transient, gRPC DeadlineExceeded;
//   - an error with HTTPStatus() (HTTPStatuser): that status, transient
//     when 5xx, 408 or 429;
//   - an error with a gRPC status: that code, transient for Unavailable,
//     DeadlineExceeded, ResourceExhausted, Aborted, Internal, Unknown and
//     DataLoss — never for client errors such as InvalidArgument, NotFound
//     or FailedPrecondition (an etag mismatch);
//   - anything else (connection refused, …): transient.
func DefaultClassify(err error) (transient bool, httpStatus int, grpcCode codes.Code) {
	var hs HTTPStatuser
	switch {
	case errors.Is(err, context.Canceled):
		return false, 0, codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return true, 0, codes.DeadlineExceeded
	case errors.As(err, &hs):
		s := hs.HTTPStatus()
		return s >= 500 || s == 408 || s == 429, s, codes.OK
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted,
			codes.Internal, codes.Unknown, codes.DataLoss:
			return true, 0, s.Code()
		}
		return false, 0, s.Code()
	}
	return true, 0, codes.OK
}

// ExecOption tunes one Execute call.
type ExecOption func(*execConfig)

type execConfig struct {
	replayable bool
	classify   Classifier
}

// Replayable tells Execute whether op may be called again: false when the
// request body is streamed or larger than the caller's replay buffer, so a
// retry could not resend it. Default true.
func Replayable(ok bool) ExecOption { return func(c *execConfig) { c.replayable = ok } }

// Classify replaces DefaultClassify for this call.
func Classify(c Classifier) ExecOption { return func(cfg *execConfig) { cfg.classify = c } }

type attemptKey struct{}

// Attempt is the attempt number (1 for the first call, 2 for the first
// retry, …) of the op that received ctx from Execute; 0 outside Execute.
func Attempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

// Execute calls op under the policy. Each attempt gets its own timeout (a
// Dapr timeout policy bounds one attempt) and passes the circuit breaker;
// a failed attempt is retried when the retry policy's maxRetries and its
// matching allow, the error is not Permanent, op is Replayable, the retry
// budget has a token and ctx is not done, after the policy's backoff. It
// returns nil, the last op error, or an error wrapping ErrBreakerOpen when
// the breaker refused the call.
//
// op must honour its ctx: the timeout cancels it, and Execute waits for op
// to return (so op never runs concurrently with its own retry).
func (pol Policy) Execute(ctx context.Context, op func(ctx context.Context) error, opts ...ExecOption) error {
	d := pol.def
	if d == nil {
		return op(ctx)
	}
	cfg := execConfig{replayable: true, classify: DefaultClassify}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.classify == nil {
		cfg.classify = DefaultClassify
	}
	obs := pol.p.obs
	if d.timeout > 0 {
		obs.Executed(pol.info, PolicyTimeout, "")
	}
	retry := d.retry
	if retry != nil {
		obs.Executed(pol.info, PolicyRetry, "")
	}
	var bud *budget
	if pol.st != nil {
		bud = pol.st.budget
	}
	if bud != nil {
		bud.deposit(pol.p.clk.Now())
	}
	var bo backoff
	for attempt := 1; ; attempt++ {
		v, err := pol.attempt(ctx, attempt, op, &cfg)
		if err == nil {
			return nil
		}
		switch {
		case ctx.Err() != nil, v.breakerOpen, v.permanent, retry == nil, !cfg.replayable,
			retry.maxRetries >= 0 && attempt > retry.maxRetries,
			!retry.match.retry(v.transient, v.httpStatus, v.grpcCode):
			return err
		}
		delay := bo.next(retry)
		if bud != nil && !bud.withdraw(pol.p.clk.Now()) {
			obs.BudgetExhausted(pol.info)
			return err
		}
		obs.Activated(pol.info, PolicyRetry, "")
		pol.p.log.Debug("resiliency: retrying", "target", pol.info.String(), "attempt", attempt+1,
			"in", delay, "error", err)
		if pol.p.clk.Sleep(ctx, delay) != nil {
			return err
		}
	}
}

type verdict struct {
	transient, permanent, breakerOpen bool
	httpStatus                        int
	grpcCode                          codes.Code
}

// attempt is one call of op through the breaker and under the timeout.
func (pol Policy) attempt(ctx context.Context, n int, op func(context.Context) error, cfg *execConfig) (v verdict, err error) {
	d := pol.def
	obs := pol.p.obs
	var done func(outcome)
	if d.breaker != nil && pol.st != nil {
		var state string
		done, state, err = pol.st.breakers.acquire(pol.actorID)
		if n == 1 {
			obs.Executed(pol.info, PolicyCircuitBreaker, state)
		}
		if err != nil {
			return verdict{breakerOpen: true}, err
		}
		defer func() {
			if r := recover(); r != nil {
				done(failed)
				panic(r)
			}
		}()
	}
	actx := context.WithValue(ctx, attemptKey{}, n)
	cancel := context.CancelFunc(func() {})
	if d.timeout > 0 {
		actx, cancel = context.WithTimeout(actx, d.timeout)
	}
	err = op(actx)
	// Timed out: the attempt's deadline passed. Checked against the clock too:
	// the far side may cancel on the propagated deadline a moment before this
	// context's own timer fires, and its error then arrives first.
	timedOut := err != nil && d.timeout > 0 && ctx.Err() == nil && (errors.Is(actx.Err(), context.DeadlineExceeded) || pastDeadline(actx))
	cancel()
	if timedOut {
		obs.Activated(pol.info, PolicyTimeout, "")
		err = &timeoutError{d: d.timeout, err: err}
	}
	if err != nil {
		v.transient, v.httpStatus, v.grpcCode = cfg.classify(err)
		if timedOut {
			v.transient = true
		}
		var pe *permanentError
		v.permanent = errors.As(err, &pe)
	}
	if done != nil {
		switch {
		case err == nil || (!v.transient && ctx.Err() == nil):
			done(succeeded)
		case ctx.Err() != nil:
			done(excluded)
		default:
			done(failed)
		}
	}
	return v, err
}

// backoff is the delay before each retry: constant, or Dapr's
// exponential (500ms growing ×1.5 per retry, each delay randomised by
// ±50%), never more than maxInterval.
type backoff struct{ current time.Duration }

func (b *backoff) next(r *retrySpec) time.Duration {
	if !r.exponential {
		return r.duration
	}
	if b.current == 0 {
		b.current = defaultInitialInterval
	}
	delay := time.Duration(float64(b.current) * (1 + backoffRandomization*(2*rand.Float64()-1)))
	b.current = min(time.Duration(float64(b.current)*backoffMultiplier), r.maxInterval)
	return min(delay, r.maxInterval)
}

// pastDeadline reports whether ctx's deadline has passed (its timer may not
// have fired yet).
func pastDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
