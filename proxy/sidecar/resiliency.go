package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/outrigger/outrigger/proxy/pubsub"
	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/telemetry"
	"github.com/outrigger/outrigger/resiliency"
)

// policies holds the current resiliency policies; a reload swaps them whole.
type policies struct {
	p   atomic.Pointer[resiliency.Provider]
	obs resiliency.Observer
	log *slog.Logger
}

// newPolicies builds the policies of the loaded Resiliency manifests (the
// built-in ones when there are none). A bad manifest fails the start with an
// error naming its file and field.
func newPolicies(specs []resources.Resiliency, appID string, m *telemetry.Metrics, log *slog.Logger) (*policies, error) {
	ps := &policies{log: log}
	ps.obs = metricsObserver{m: m, ps: ps}
	p, err := resiliency.Build(specs, appID, resiliency.WithObserver(ps.obs), resiliency.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("resiliency: %w", err)
	}
	for _, s := range specs {
		m.RecordResiliencyLoaded(s.Name)
	}
	ps.p.Store(p)
	return ps, nil
}

// current is the policies in force.
func (ps *policies) current() *resiliency.Provider { return ps.p.Load() }

// reload swaps in new policies, keeping breaker and ejection state of
// unchanged targets; on error the old ones stay.
func (ps *policies) reload(specs []resources.Resiliency, appID string) error {
	p, err := resiliency.Build(specs, appID, resiliency.WithObserver(ps.obs), resiliency.WithLogger(ps.log), resiliency.Previous(ps.current()))
	if err != nil {
		return fmt.Errorf("resiliency: %w", err)
	}
	ps.p.Store(p)
	return nil
}

// inbound is the pub/sub delivery retrier: the component's inbound policy
// when it has retries, else the block's built-in default.
func (ps *policies) inbound() pubsub.Retrier { return inboundRetrier{ps, pubsub.DefaultRetrier()} }

type inboundRetrier struct {
	ps       *policies
	fallback pubsub.Retrier
}

func (r inboundRetrier) Retry(ctx context.Context, name string, op func(context.Context) error) error {
	pol := r.ps.current().ComponentInbound(name, "pubsub")
	if !pol.HasRetries() {
		return r.fallback.Retry(ctx, name, op)
	}
	return pol.Execute(ctx, op)
}

// metricsObserver turns resiliency events into Dapr's and Outrigger's metrics.
type metricsObserver struct {
	m  *telemetry.Metrics
	ps *policies
}

func (o metricsObserver) Executed(t resiliency.Target, k resiliency.PolicyKind, status string) {
	o.m.RecordResiliencyExecuted(t.Resiliency, string(k), t.Direction, t.MetricLabel(), status)
}

func (o metricsObserver) Activated(t resiliency.Target, k resiliency.PolicyKind, status string) {
	o.m.RecordResiliencyActivated(t.Resiliency, string(k), t.Direction, t.MetricLabel(), status)
	switch k {
	case resiliency.PolicyRetry:
		o.m.AddRetry(t.String())
	case resiliency.PolicyCircuitBreaker:
		st := telemetry.BreakerClosed
		switch status {
		case resiliency.StateOpen:
			st = telemetry.BreakerOpen
		case resiliency.StateHalfOpen:
			st = telemetry.BreakerHalfOpen
		}
		o.m.SetBreakerState(t.String(), st)
	}
}

func (o metricsObserver) BudgetExhausted(t resiliency.Target) {
	o.m.AddRetryBudgetExhausted(t.String())
}

// Ejected recounts the app's ejected instances for the gauge. It runs apart
// from the call: the ejector may hold its lock while reporting.
func (o metricsObserver) Ejected(appID, instance string, d time.Duration) {
	o.ps.log.Info("instance ejected from load balancing", "app", appID, "instance", instance, "for", d.String())
	go func() {
		n := 0
		for _, e := range o.ps.current().Ejector().Ejections() {
			if e.AppID == appID && e.Ejected {
				n++
			}
		}
		o.m.SetEjectedInstances(appID, n)
	}()
}
