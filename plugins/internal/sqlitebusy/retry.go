package sqlitebusy

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"
)

// Busy reports whether err is SQLite's "database is locked" (SQLITE_BUSY or
// SQLITE_LOCKED).
func Busy(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "SQLITE_LOCKED") || strings.Contains(s, "database is locked")
}

// Retry runs op until it succeeds, fails with another error, or ctx ends
// (then the last error is returned). Waits grow from 10 ms to 250 ms, with
// jitter so processes that collided do not collide again.
func Retry(ctx context.Context, op func(context.Context) error) error {
	wait := 10 * time.Millisecond
	for {
		err := op(ctx)
		if !Busy(err) {
			return err
		}
		d := wait/2 + rand.N(wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		wait = min(wait*2, 250*time.Millisecond)
	}
}
