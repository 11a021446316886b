package loadgen

import (
	"context"
	"fmt"
	"time"
)

// Op is one operation of a closed loop: worker is the caller's index in [0, Concurrency), so an
// op can keep per-worker state (a key, a connection) in a slice. A nil error is a success; ctx
// ends at the op's deadline or when the run is cancelled.
type Op func(ctx context.Context, worker int) error

// OpsConfig describes one closed-loop run of an arbitrary operation (a Redis command, a gRPC
// call, a publish): the same loop, window and bounds as Run, without the HTTP specifics.
type OpsConfig struct {
	Op          Op
	Concurrency int           // workers
	Warmup      time.Duration // load whose results are discarded
	Duration    time.Duration // measured window
	MaxRequests int64         // cap on attempts (warm-up included)
	Timeout     time.Duration // per op, through its context

	OnWindowStart func()
	OnWindowEnd   func()
}

// RunOps drives cfg.Op in a closed loop and returns what was measured in the window. As with Run,
// it returns an error only for a bad configuration or a cancelled context.
func RunOps(ctx context.Context, cfg OpsConfig) (Result, error) {
	switch {
	case cfg.Op == nil:
		return Result{}, fmt.Errorf("load run: no operation")
	case cfg.Concurrency < 1 || cfg.Concurrency > 10000:
		return Result{}, fmt.Errorf("concurrency %d: want 1..10000", cfg.Concurrency)
	case cfg.Duration <= 0 || cfg.Warmup < 0:
		return Result{}, fmt.Errorf("duration %v / warm-up %v: want duration > 0 and warm-up ≥ 0", cfg.Duration, cfg.Warmup)
	case cfg.MaxRequests < 1:
		return Result{}, fmt.Errorf("max requests %d: want ≥ 1", cfg.MaxRequests)
	case cfg.Timeout <= 0:
		return Result{}, fmt.Errorf("op timeout %v: want > 0", cfg.Timeout)
	}
	return drive(ctx, driveConfig{
		op: cfg.Op, opTimeout: cfg.Timeout, concurrency: cfg.Concurrency,
		warmup: cfg.Warmup, duration: cfg.Duration, maxRequests: cfg.MaxRequests,
		onWindowStart: cfg.OnWindowStart, onWindowEnd: cfg.OnWindowEnd,
	})
}
