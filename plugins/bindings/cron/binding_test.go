package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.ExerciseInputBinding(t, func() sdk.InputBinding { return New(nil) }, sdktest.InputBindingCase{
		Metadata:    sdk.Metadata{"schedule": "@every 1s"},
		BadMetadata: sdk.Metadata{"schedule": "every second please"},
		Within:      5 * time.Second,
	})
}

func TestParseSchedule(t *testing.T) {
	utc := time.UTC
	base := time.Date(2024, 3, 15, 10, 20, 30, 500, utc) // a Friday
	for _, tc := range []struct {
		expr string
		want time.Time
	}{
		{"@every 1s", time.Date(2024, 3, 15, 10, 20, 31, 0, utc)},
		{"@every 1m", time.Date(2024, 3, 15, 10, 21, 0, 0, utc)},
		{"* * * * * *", time.Date(2024, 3, 15, 10, 20, 31, 0, utc)},
		{"*/15 * * * * *", time.Date(2024, 3, 15, 10, 20, 45, 0, utc)},
		{"0 30 * * * *", time.Date(2024, 3, 15, 10, 30, 0, 0, utc)},
		{"30 * * * *", time.Date(2024, 3, 15, 10, 30, 0, 0, utc)}, // 5 fields: minute 30
		{"0 0 9-17 * * MON-FRI", time.Date(2024, 3, 15, 11, 0, 0, 0, utc)},
		{"0 0 0 * * SUN", time.Date(2024, 3, 17, 0, 0, 0, 0, utc)},
		{"0 0 0 * * 7", time.Date(2024, 3, 17, 0, 0, 0, 0, utc)},
		{"0 0 0 1 * *", time.Date(2024, 4, 1, 0, 0, 0, 0, utc)},
		{"0 0 0 1,20 * ?", time.Date(2024, 3, 20, 0, 0, 0, 0, utc)},
		{"0 0 12 29 feb *", time.Date(2028, 2, 29, 12, 0, 0, 0, utc)},
		{"0 0 0 13 * FRI", time.Date(2024, 3, 22, 0, 0, 0, 0, utc)}, // dom OR dow when both restricted
		{"@hourly", time.Date(2024, 3, 15, 11, 0, 0, 0, utc)},
		{"@daily", time.Date(2024, 3, 16, 0, 0, 0, 0, utc)},
		{"@weekly", time.Date(2024, 3, 17, 0, 0, 0, 0, utc)},
		{"@monthly", time.Date(2024, 4, 1, 0, 0, 0, 0, utc)},
		{"@yearly", time.Date(2025, 1, 1, 0, 0, 0, 0, utc)},
		{"CRON_TZ=Asia/Tokyo 0 0 0 * * *", time.Date(2024, 3, 15, 15, 0, 0, 0, utc)},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			s, err := parseSchedule(tc.expr, utc)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := s.next(base); !got.Equal(tc.want) {
				t.Fatalf("next(%v) = %v, want %v", base, got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "* * * *", "61 * * * * *", "* * * * * * *", "@every 10ms", "@every soon", "@sometimes",
		"*/0 * * * * *", "5-1 * * * * *", "* * * * FOO *", "CRON_TZ=Nowhere/Atlantis * * * * *"} {
		if _, err := parseSchedule(bad, utc); err == nil {
			t.Errorf("parseSchedule(%q) succeeded, want an error", bad)
		}
	}
	if s, _ := parseSchedule("0 0 0 30 2 *", utc); !s.next(base).IsZero() {
		t.Error("30 February must never fire")
	}
}

// TestNoDoubleFire reopens Read on one instance right after a tick fired and
// checks the tick is not fired again; and a fresh instance (a restarted
// plugin) started within the same second does not fire it either.
func TestNoDoubleFire(t *testing.T) {
	b := New(nil)
	if err := b.Init(context.Background(), sdk.Metadata{"schedule": "@every 1s"}); err != nil {
		t.Fatal(err)
	}
	fired := make(chan string, 10)
	read := func(b *Binding, n int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var count atomic.Int32
		done := make(chan struct{})
		go func() {
			_ = b.Read(ctx, func(_ context.Context, ev *sdk.BindingEvent) ([]byte, error) {
				fired <- ev.Metadata["readTimeUTC"]
				if count.Add(1) == int32(n) {
					cancel()
				}
				return nil, nil
			})
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("no tick within 5s")
		}
	}
	read(b, 1)
	first := b.last
	// Pretend the clock went back before the last tick (a reopened stream
	// racing the tick): the next tick must still be after it.
	b.now = func() time.Time { return first.Add(-300 * time.Millisecond) }
	read(b, 1)
	if !b.last.After(first) {
		t.Fatalf("tick %v fired again after reopening (last %v)", first, b.last)
	}
	// A restarted plugin: a new instance whose clock is just after a tick.
	nb := New(nil)
	_ = nb.Init(context.Background(), sdk.Metadata{"schedule": "@every 1s"})
	tick := b.last
	nb.now = func() time.Time { return tick.Add(10 * time.Millisecond) }
	if next := nb.sched.next(nb.now()); !next.After(tick) {
		t.Fatalf("a restarted instance would fire %v again", next)
	}
	close(fired)
	for ts := range fired {
		if !strings.Contains(ts, "UTC") {
			t.Errorf("readTimeUTC %q is not a UTC time", ts)
		}
	}
}
