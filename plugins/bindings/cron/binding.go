package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// Binding is the bindings.cron input binding: it fires an event at every
// tick of its schedule.
type Binding struct {
	log   *slog.Logger
	now   func() time.Time
	sched schedule
	raw   string

	mu sync.Mutex
	// last is the last tick fired by this instance: a Read stream opened
	// again (the sidecar reconnecting) resumes after it, never re-firing it.
	last time.Time
}

// New returns an uninitialised cron binding.
func New(log *slog.Logger) *Binding {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Binding{log: log, now: time.Now}
}

// metadataKeys are the component metadata keys the binding reads ("direction"
// and "route" are read by the sidecar).
var metadataKeys = []string{"schedule", "direction", "route"}

// Init parses the schedule.
func (b *Binding) Init(_ context.Context, md sdk.Metadata) error {
	for k := range md {
		if strings.EqualFold(k, "schedule") && k != "schedule" {
			md["schedule"] = md[k]
		}
	}
	raw := md["schedule"]
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("metadata schedule is required (e.g. \"@every 15s\" or \"0 30 * * * *\")")
	}
	s, err := parseSchedule(raw, time.Local)
	if err != nil {
		return err
	}
	b.sched, b.raw = s, raw
	return nil
}

// Read fires h at each tick until ctx ends. Each tick is handed over on its
// own goroutine, so a slow app does not delay the next; an app error is
// logged (a cron tick is not retried, as in Dapr).
func (b *Binding) Read(ctx context.Context, h sdk.BindingHandler) error {
	if b.sched == nil {
		return fmt.Errorf("cron binding is not initialised")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		b.mu.Lock()
		from := b.now()
		if b.last.After(from) {
			from = b.last
		}
		b.mu.Unlock()
		tick := b.sched.next(from)
		if tick.IsZero() {
			return fmt.Errorf("schedule %q never fires", b.raw)
		}
		timer := time.NewTimer(time.Until(tick))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		b.mu.Lock()
		if !tick.After(b.last) { // another stream of this instance fired it
			b.mu.Unlock()
			continue
		}
		b.last = tick
		b.mu.Unlock()
		now := b.now()
		md := map[string]string{"timeZone": now.Location().String(), "readTimeUTC": now.UTC().String()}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h(ctx, &sdk.BindingEvent{Metadata: md}); err != nil {
				b.log.Warn("cron event not accepted", "schedule", b.raw, "tick", tick, "err", err)
			}
		}()
	}
}
