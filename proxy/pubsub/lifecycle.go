package pubsub

import (
	"context"
	"errors"
	"sync"

	"github.com/outrigger/outrigger/proxy/errs"
)

// Start loads the programmatic subscriptions (GET /dapr/subscribe or
// ListTopicSubscriptions), merges them after the declarative ones (the first
// subscription of a pubsub/topic wins; later ones are logged and skipped),
// and starts consuming every subscription whose pubsub exists and whose
// topic the component's scoping lets this app subscribe to. Call it once the
// app is ready. Problems with single subscriptions are logged, not returned.
func (a *API) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("pubsub: already started")
	}
	if a.stopping {
		a.mu.Unlock()
		return errors.New("pubsub: stopped")
	}
	a.started = true
	a.mu.Unlock()

	if a.app == nil {
		if len(a.decl) > 0 {
			a.log.Warn("declarative subscriptions ignored: the sidecar has no app channel", "count", len(a.decl))
		}
		return nil
	}
	a.mu.Lock()
	all := a.declarative()
	a.mu.Unlock()
	prog, err := a.programmatic(ctx)
	if err != nil {
		a.log.Error("programmatic subscriptions not loaded", "err", err)
	}
	all = append(all, prog...)

	d := a.deliverer()
	seen := map[string]bool{}
	var kept []*subscription
	var cons []*consumer
	for _, s := range all {
		if seen[s.key()] {
			a.log.Warn("duplicate subscription skipped", "pubsub", s.pubsub, "topic", s.topic, "source", s.source)
			continue
		}
		seen[s.key()] = true
		b, err := a.resolve(s.pubsub, s.topic)
		if err != nil {
			a.log.Warn("subscription skipped", "pubsub", s.pubsub, "topic", s.topic, "source", s.source, "err", err)
			continue
		}
		if !scopesOf(b.Properties, a.appID).canSubscribe(s.topic) {
			a.log.Warn("subscription skipped: topic not allowed for this app by the component's scoping",
				"pubsub", s.pubsub, "topic", s.topic, "source", s.source)
			continue
		}
		c := a.newConsumer(s, b, d)
		c.start(nil)
		a.log.Info("subscribed", "pubsub", s.pubsub, "topic", s.topic, "type", s.kind.String(), "rules", len(s.rules))
		kept = append(kept, s)
		cons = append(cons, c)
	}
	a.mu.Lock()
	stopped := a.stopping
	if !stopped {
		a.subs, a.consumers = kept, cons
	}
	a.mu.Unlock()
	if stopped { // Stop ran while we were starting
		for _, c := range cons {
			c.stop(ctx)
		}
	}
	return nil
}

// deliverer is the app's deliverer: gRPC apps get OnTopicEvent, HTTP apps a POST.
func (a *API) deliverer() deliverer {
	if g, ok := a.app.(grpcApp); ok {
		return grpcAppDeliverer{g: g}
	}
	return httpApp{ch: a.app}
}

// Stop stops every subscription: no new message is delivered, in-flight
// deliveries finish (until ctx ends, then they are cancelled), their acks are
// sent, and the broker streams close, so unacked messages are redelivered
// later. Streaming subscribers see their stream end with Unavailable.
func (a *API) Stop(ctx context.Context) error {
	a.mu.Lock()
	a.stopping = true
	cons := append([]*consumer(nil), a.consumers...)
	for _, c := range a.streamConsumers {
		cons = append(cons, c)
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cons {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(ctx) }()
	}
	wg.Wait()
	a.runCancel()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errs.Internal.New("pubsub: streaming subscriptions did not end in time")
	}
}
