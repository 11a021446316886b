package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"

	"github.com/outrigger/outrigger/discovery"
	"github.com/outrigger/outrigger/proxy/hostreg"
	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// loadResources reads the resources folders and the Configuration (the
// first --config file; an empty one when none is given).
func loadResources(ctx context.Context, o *Options, log *slog.Logger) (*resources.Set, *resources.Configuration, error) {
	conf := &resources.Configuration{}
	for i, path := range o.Config {
		c, err := resources.LoadConfiguration(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--config: %w", err)
		}
		for _, w := range c.Warnings {
			log.Warn("configuration: ignored", "where", w.String())
		}
		if i == 0 {
			conf = c
		} else {
			log.Warn("only the first --config file is used", "ignored", path)
		}
	}
	if len(o.ResourcesPaths) == 0 {
		return &resources.Set{}, conf, nil
	}
	set, err := resources.Load(ctx, o.ResourcesPaths, o.AppID, log.With("scope", "resources"))
	if err != nil {
		return nil, nil, err
	}
	return set, conf, nil
}

func newLogger(o *Options) *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(o.LogLevel) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error", "fatal":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(os.Stdout, opts)
	if o.LogAsJSON {
		h = slog.NewJSONHandler(os.Stdout, opts)
	}
	return slog.New(h).With("app_id", o.AppID)
}

// registrySeeds are the gossip addresses of the other sidecars on this host.
func registrySeeds() []string {
	entries, err := hostreg.List()
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.GossipAddr != "" && e.PID != os.Getpid() {
			out = append(out, e.GossipAddr)
		}
	}
	return out
}

func appConnection(o *Options) *runtimev1.AppConnectionProperties {
	p := &runtimev1.AppConnectionProperties{Port: int32(o.AppPort), Protocol: o.AppProtocol, ChannelAddress: o.AppChannelAddress}
	if o.AppMaxConcurrency > 0 {
		p.MaxConcurrency = int32(o.AppMaxConcurrency)
	}
	if o.EnableAppHealthCheck {
		p.Health = &runtimev1.AppConnectionHealthProperties{
			HealthCheckPath:     o.AppHealthCheckPath,
			HealthProbeInterval: (time.Duration(o.AppHealthProbeInterval) * time.Second).String(),
			HealthProbeTimeout:  (time.Duration(o.AppHealthProbeTimeout) * time.Millisecond).String(),
			HealthThreshold:     int32(o.AppHealthThreshold),
		}
	}
	return p
}

// pickerAdapter gives the invoke building block addresses from discovery.
type pickerAdapter struct{ b *discovery.Balancer }

func (p pickerAdapter) Pick(ctx context.Context, appID string) (string, func(error), error) {
	inst, done, err := p.b.Pick(ctx, appID)
	if err != nil {
		return "", nil, err
	}
	return inst.Addr, func(err error) {
		// A hop that could not reach the instance skips it until gossip catches up.
		if status.Code(err) == codes.Unavailable {
			p.b.MarkFailed(inst.Addr)
		}
		done(err)
	}, nil
}

// summarize lists the loaded resources without their metadata values (which
// may hold secrets).
func summarize(set *resources.Set) any {
	type item struct {
		Kind, Name, Type, File string
		Metadata               []string `json:",omitempty"`
	}
	var out []item
	for _, c := range set.Components {
		names := make([]string, 0, len(c.Metadata))
		for _, m := range c.Metadata {
			names = append(names, m.Name)
		}
		out = append(out, item{Kind: "Component", Name: c.Name, Type: c.Type, File: c.Location(), Metadata: names})
	}
	for _, s := range set.Subscriptions {
		out = append(out, item{Kind: "Subscription", Name: s.Name})
	}
	for _, r := range set.Resiliencies {
		out = append(out, item{Kind: "Resiliency", Name: r.Name})
	}
	return out
}

// startTelemetry builds tracing and metrics from the Configuration (spec.tracing,
// spec.metrics) on a registry of the sidecar's own.
func startTelemetry(ctx context.Context, o *Options, conf *resources.Configuration, log *slog.Logger) (*telemetry.Tracing, *telemetry.Metrics, *prometheus.Registry, error) {
	var ts resources.TracingSpec
	var ms resources.MetricSpec
	if conf.Spec.Tracing != nil {
		ts = *conf.Spec.Tracing
	}
	if conf.Spec.Metrics != nil {
		ms = *conf.Spec.Metrics
	} else if conf.Spec.Metric != nil {
		ms = *conf.Spec.Metric
	}
	tracing, err := telemetry.NewTracing(ctx, ts, o.AppID, log.With("scope", "tracing"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--config: spec.tracing: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if !o.EnableMetrics {
		off := false
		ms.Enabled = &off
	}
	metrics, err := telemetry.NewMetrics(reg, ms, o.AppID, os.Getenv("NAMESPACE"), log.With("scope", "metrics"))
	if err != nil {
		_ = tracing.Shutdown(ctx)
		return nil, nil, nil, fmt.Errorf("--config: spec.metrics: %w", err)
	}
	return tracing, metrics, reg, nil
}
