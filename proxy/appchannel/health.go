package appchannel

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/protobuf/types/known/emptypb"
)

// WaitForPort blocks until addr accepts a TCP connection (dialling every 100 ms
// with a 500 ms timeout, as daprd does) or ctx ends.
func WaitForPort(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ProbeConfig is daprd's app health check configuration.
type ProbeConfig struct {
	Path      string        // HTTP path, default /healthz
	Interval  time.Duration // default 5 s
	Timeout   time.Duration // default 500 ms
	Threshold int           // consecutive failures before unhealthy, default 3
}

// Prober checks the app's health periodically. It starts unhealthy; one success
// makes it healthy; Threshold consecutive failures make it unhealthy.
type Prober struct {
	cfg     ProbeConfig
	check   func(ctx context.Context) bool
	healthy atomic.Bool
	log     *slog.Logger
	changed func(healthy bool)
}

// NewHTTPProber probes GET http://addr<path> (2xx = healthy).
func NewHTTPProber(addr string, cfg ProbeConfig, log *slog.Logger, changed func(bool)) *Prober {
	cfg = cfg.withDefaults()
	client := &http.Client{Timeout: cfg.Timeout}
	url := "http://" + addr + cfg.Path
	return &Prober{cfg: cfg, log: log, changed: changed, check: func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 300
	}}
}

// NewGRPCProber probes AppCallbackHealthCheck.HealthCheck.
func NewGRPCProber(ch *GRPCChannel, cfg ProbeConfig, log *slog.Logger, changed func(bool)) *Prober {
	cfg = cfg.withDefaults()
	hc := runtimev1.NewAppCallbackHealthCheckClient(ch.Conn())
	return &Prober{cfg: cfg, log: log, changed: changed, check: func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ch.OutgoingContext(ctx, nil), cfg.Timeout)
		defer cancel()
		_, err := hc.HealthCheck(ctx, &emptypb.Empty{})
		return err == nil
	}}
}

func (c ProbeConfig) withDefaults() ProbeConfig {
	if c.Path == "" {
		c.Path = "/healthz"
	}
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 500 * time.Millisecond
	}
	if c.Threshold <= 0 {
		c.Threshold = 3
	}
	return c
}

// Healthy reports the last verdict.
func (p *Prober) Healthy() bool { return p.healthy.Load() }

// Run probes until ctx ends. The first probe runs at once.
func (p *Prober) Run(ctx context.Context) {
	failures := 0
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		ok := p.check(ctx)
		if ok {
			failures = 0
			if !p.healthy.Swap(true) {
				p.log.Info("app is healthy")
				if p.changed != nil {
					p.changed(true)
				}
			}
		} else {
			failures++
			if failures >= p.cfg.Threshold && p.healthy.Swap(false) {
				p.log.Warn("app is unhealthy", "consecutiveFailures", failures)
				if p.changed != nil {
					p.changed(false)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
