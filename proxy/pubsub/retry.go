package pubsub

import (
	"context"
	"time"
)

// Retrier is the inbound policy applied to a delivery: it runs op until op
// returns nil or the policy gives up, and returns op's last error. op only
// returns retriable errors (app RETRY, unknown status, transport failures,
// non-2xx other than 404); drops and successes return nil. The resiliency
// building block implements it from targets.components.<pubsub>.inbound.
type Retrier interface {
	Retry(ctx context.Context, pubsub string, op func(ctx context.Context) error) error
}

// ConstantRetrier retries at a fixed interval, at most MaxRetries times after
// the first attempt (MaxRetries < 0: until ctx ends).
type ConstantRetrier struct {
	Interval   time.Duration
	MaxRetries int
}

// DefaultRetrier is the built-in inbound policy used until a Resiliency
// resource says otherwise: constant 1 s, 3 retries (4 attempts, ~3 s) before
// the message goes to its dead-letter topic or back to the broker.
func DefaultRetrier() Retrier { return ConstantRetrier{Interval: time.Second, MaxRetries: 3} }

// Retry implements Retrier.
func (c ConstantRetrier) Retry(ctx context.Context, _ string, op func(ctx context.Context) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		if err = op(ctx); err == nil {
			return nil
		}
		if c.MaxRetries >= 0 && attempt >= c.MaxRetries {
			return err
		}
		t := time.NewTimer(c.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
