package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one closed-loop run.
type Config struct {
	URL         string        // POST target; host must be 127.0.0.1
	Body        []byte        // request body, sent as is every time
	WantBytes   int           // expected response body length; < 0 accepts any
	Concurrency int           // workers = connections
	Warmup      time.Duration // load whose results are discarded
	Duration    time.Duration // measured window
	MaxRequests int64         // cap on attempts (warm-up included); the window ends early when reached
	Timeout     time.Duration // per request

	// OnWindowStart and OnWindowEnd, if set, run as the measured window opens and closes
	// (on the coordinating goroutine; keep them short).
	OnWindowStart func()
	OnWindowEnd   func()
}

// Result is what a run measured inside its window.
type Result struct {
	Requests  uint64        // successful requests completed inside the window
	Errors    uint64        // failed attempts inside the window (status ≠ 200, wrong length, I/O error)
	Window    time.Duration // actual length of the measured window
	Latency   *Histogram    // latencies of the successful requests
	ErrSample []string      // up to 5 distinct error messages, from warm-up or window
	Capped    bool          // the window ended early because MaxRequests was reached
}

// RPS is successful requests per second inside the window.
func (r Result) RPS() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Window.Seconds()
}

const (
	phaseWarmup int32 = iota
	phaseWindow
	phaseStop
)

// Run drives cfg's load and returns what was measured in the window. It returns an error only for
// a bad configuration or a cancelled context; request failures are counted in Result.Errors.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := validate(cfg); err != nil {
		return Result{}, err
	}
	tr := &http.Transport{
		Proxy:               nil, // never route benchmark traffic through $HTTP_PROXY
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Concurrency,
		MaxIdleConnsPerHost: cfg.Concurrency,
		MaxConnsPerHost:     cfg.Concurrency,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}

	return drive(ctx, driveConfig{
		op:          func(context.Context, int) error { return doOne(client, cfg) },
		concurrency: cfg.Concurrency, warmup: cfg.Warmup, duration: cfg.Duration,
		maxRequests: cfg.MaxRequests, onWindowStart: cfg.OnWindowStart, onWindowEnd: cfg.OnWindowEnd,
	})
}

// driveConfig is what the closed loop needs, whatever one operation is.
type driveConfig struct {
	op                         Op
	opTimeout                  time.Duration // > 0: each op gets a context with this deadline
	concurrency                int
	warmup, duration           time.Duration
	maxRequests                int64
	onWindowStart, onWindowEnd func()
}

// drive runs the closed loop: concurrency workers, each calling op back to back, a warm-up, then
// the measured window.
func drive(ctx context.Context, cfg driveConfig) (Result, error) {
	var (
		phase    atomic.Int32
		attempts atomic.Int64
		capped   = make(chan struct{})
		capOnce  sync.Once
		errs     errorSample
		wg       sync.WaitGroup
	)
	// Ops see a context that ends when the run does, so a blocked op cannot outlive it.
	opCtx, cancelOps := context.WithCancel(ctx)
	defer cancelOps()
	workers := make([]*worker, cfg.concurrency)
	for i := range workers {
		workers[i] = &worker{hist: NewHistogram()}
	}
	one := func(id int) error {
		if cfg.opTimeout <= 0 {
			return cfg.op(opCtx, id)
		}
		c, cancel := context.WithTimeout(opCtx, cfg.opTimeout)
		defer cancel()
		return cfg.op(c, id)
	}
	for id, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for phase.Load() != phaseStop {
				if attempts.Add(1) > cfg.maxRequests {
					capOnce.Do(func() { close(capped) })
					return
				}
				inWindow := phase.Load() == phaseWindow
				start := time.Now()
				err := one(id)
				elapsed := time.Since(start)
				if !inWindow || phase.Load() != phaseWindow {
					if err != nil && phase.Load() != phaseStop {
						errs.add(err)
					}
					continue // straddles a phase boundary: not part of the window
				}
				if err != nil {
					w.errors++
					errs.add(err)
					continue
				}
				w.hist.Record(elapsed)
			}
		}()
	}

	var res Result
	wait := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-capped:
			res.Capped = true
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := wait(cfg.warmup)
	if err == nil && !res.Capped {
		if cfg.onWindowStart != nil {
			cfg.onWindowStart()
		}
		windowStart := time.Now()
		phase.Store(phaseWindow)
		err = wait(cfg.duration)
		phase.Store(phaseStop)
		res.Window = time.Since(windowStart)
		if cfg.onWindowEnd != nil {
			cfg.onWindowEnd()
		}
	}
	phase.Store(phaseStop)
	if err != nil {
		cancelOps() // unblock ops waiting on a cancelled run
	}
	wg.Wait()
	if err != nil {
		return Result{}, fmt.Errorf("load run cancelled: %w", err)
	}

	res.Latency = NewHistogram()
	for _, w := range workers {
		res.Latency.Merge(w.hist)
		res.Errors += w.errors
	}
	res.Requests = res.Latency.Count()
	res.ErrSample = errs.list()
	return res, nil
}

type worker struct {
	hist   *Histogram
	errors uint64
}

func validate(cfg Config) error {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return fmt.Errorf("load target %q: %w", cfg.URL, err)
	}
	switch {
	case u.Scheme != "http":
		return fmt.Errorf("load target %q: only http:// is supported", cfg.URL)
	case u.Hostname() != "127.0.0.1":
		return fmt.Errorf("load target %q: the benchmark only targets 127.0.0.1", cfg.URL)
	case cfg.Concurrency < 1 || cfg.Concurrency > 10000:
		return fmt.Errorf("concurrency %d: want 1..10000", cfg.Concurrency)
	case cfg.Duration <= 0 || cfg.Warmup < 0:
		return fmt.Errorf("duration %v / warm-up %v: want duration > 0 and warm-up ≥ 0", cfg.Duration, cfg.Warmup)
	case cfg.MaxRequests < 1:
		return fmt.Errorf("max requests %d: want ≥ 1", cfg.MaxRequests)
	case cfg.Timeout <= 0:
		return fmt.Errorf("request timeout %v: want > 0", cfg.Timeout)
	}
	return nil
}

// doOne sends one request and checks the reply: status 200 and, if cfg.WantBytes ≥ 0, exactly that
// many body bytes.
func doOne(client *http.Client, cfg Config) error {
	req, err := http.NewRequest(http.MethodPost, cfg.URL, bytes.NewReader(cfg.Body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("read response: %w", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %d (want 200)", resp.StatusCode)
	case cfg.WantBytes >= 0 && n != int64(cfg.WantBytes):
		return fmt.Errorf("response body %d bytes (want %d)", n, cfg.WantBytes)
	}
	return nil
}

// errorSample keeps the first few distinct error messages.
type errorSample struct {
	mu   sync.Mutex
	seen []string
}

func (s *errorSample) add(err error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop the repeated "Post \"http://…\":" prefix
	}
	msg := err.Error()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) >= 5 {
		return
	}
	for _, m := range s.seen {
		if m == msg {
			return
		}
	}
	s.seen = append(s.seen, msg)
}

func (s *errorSample) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}
