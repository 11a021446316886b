package loadgen

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func echoServer(t *testing.T, status int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(status)
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRunEcho(t *testing.T) {
	srv := echoServer(t, http.StatusOK)
	var starts, ends int
	res, err := Run(context.Background(), Config{
		URL: srv.URL + "/echo", Body: make([]byte, 1024), WantBytes: 1024,
		Concurrency: 4, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond,
		MaxRequests: 1 << 30, Timeout: time.Second,
		OnWindowStart: func() { starts++ }, OnWindowEnd: func() { ends++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Requests == 0 || res.RPS() <= 0 || len(res.ErrSample) != 0 {
		t.Fatalf("want error-free requests, got %+v", res)
	}
	if starts != 1 || ends != 1 {
		t.Fatalf("hooks ran %d/%d times, want 1/1", starts, ends)
	}
	if res.Window < 200*time.Millisecond || res.Window > time.Second {
		t.Fatalf("window %v, want ≈200ms", res.Window)
	}
	if p50 := res.Latency.Quantile(0.5); p50 <= 0 || p50 > res.Latency.Max() {
		t.Fatalf("p50 %v max %v", p50, res.Latency.Max())
	}
}

func TestRunCountsErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		want    int
		wantMsg string
	}{
		{"bad status", http.StatusInternalServerError, 16, "status 500"},
		{"short body", http.StatusOK, 99, "16 bytes (want 99)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := echoServer(t, tt.status)
			res, err := Run(context.Background(), Config{
				URL: srv.URL, Body: make([]byte, 16), WantBytes: tt.want, Concurrency: 2,
				Duration: 50 * time.Millisecond, MaxRequests: 1 << 30, Timeout: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 0 || res.Errors == 0 {
				t.Fatalf("want only errors, got %d ok / %d errors", res.Requests, res.Errors)
			}
			if len(res.ErrSample) != 1 || !strings.Contains(res.ErrSample[0], tt.wantMsg) {
				t.Fatalf("error sample %q, want one containing %q", res.ErrSample, tt.wantMsg)
			}
		})
	}
}

func TestRunCapped(t *testing.T) {
	srv := echoServer(t, http.StatusOK)
	start := time.Now()
	res, err := Run(context.Background(), Config{
		URL: srv.URL, WantBytes: 0, Concurrency: 3, Duration: time.Minute,
		MaxRequests: 50, Timeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Capped || res.Requests > 50 || time.Since(start) > 10*time.Second {
		t.Fatalf("want an early capped stop, got capped=%v requests=%d after %v", res.Capped, res.Requests, time.Since(start))
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	ok := Config{URL: "http://127.0.0.1:1/x", Concurrency: 1, Duration: time.Second, MaxRequests: 1, Timeout: time.Second}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"remote host", func(c *Config) { c.URL = "http://example.com/x" }},
		{"localhost name", func(c *Config) { c.URL = "http://localhost:1/x" }},
		{"https", func(c *Config) { c.URL = "https://127.0.0.1:1/x" }},
		{"zero concurrency", func(c *Config) { c.Concurrency = 0 }},
		{"zero duration", func(c *Config) { c.Duration = 0 }},
		{"zero cap", func(c *Config) { c.MaxRequests = 0 }},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			if _, err := Run(context.Background(), c); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	srv := echoServer(t, http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, Config{URL: srv.URL, WantBytes: -1, Concurrency: 1, Duration: time.Minute, MaxRequests: 1 << 40, Timeout: time.Second})
	if err == nil {
		t.Fatal("want an error from a cancelled run")
	}
}

func TestRunOps(t *testing.T) {
	var calls [3]int
	res, err := RunOps(context.Background(), OpsConfig{
		Op: func(ctx context.Context, w int) error {
			calls[w]++ // one goroutine per worker index: no race
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("op context has no deadline")
			}
			if calls[w]%4 == 0 {
				return errors.New("every fourth op fails")
			}
			time.Sleep(100 * time.Microsecond)
			return nil
		},
		Concurrency: 3, Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond,
		MaxRequests: 1 << 30, Timeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors == 0 || res.Errors > res.Requests {
		t.Fatalf("want successes and about a third as many errors, got %d ok, %d errors", res.Requests, res.Errors)
	}
	if len(res.ErrSample) != 1 || res.ErrSample[0] != "every fourth op fails" {
		t.Fatalf("error sample %q", res.ErrSample)
	}
	for w, n := range calls {
		if n == 0 {
			t.Errorf("worker %d never ran", w)
		}
	}
	if _, err := RunOps(context.Background(), OpsConfig{Concurrency: 1, Duration: time.Second, MaxRequests: 1, Timeout: time.Second}); err == nil {
		t.Error("RunOps without an op: want an error")
	}
}
