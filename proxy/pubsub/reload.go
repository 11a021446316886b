package pubsub

import (
	"context"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/protobuf/proto"

	"github.com/outrigger/outrigger/proxy/resources"
)

// Reload applies a changed set of declarative Subscription resources (hot
// reload): a subscription that is gone or changed stops (its in-flight
// deliveries drain and are acked; what it had not taken stays with the
// broker), a new or changed one starts, an unchanged one keeps running
// untouched. Programmatic and streaming subscriptions are not affected,
// except that a declarative one takes precedence for the same topic, as at
// start. Before Start it only records the set.
func (a *API) Reload(ctx context.Context, decl []resources.Subscription) {
	a.reloadMu.Lock() // one reload at a time
	defer a.reloadMu.Unlock()
	a.mu.Lock()
	a.decl = decl
	if !a.started || a.stopping || a.app == nil {
		a.mu.Unlock()
		return
	}
	subs, cons := a.subs, a.consumers
	a.mu.Unlock()

	a.mu.Lock()
	want := a.declarative()
	a.mu.Unlock()
	wantByKey := map[string]*subscription{}
	for _, s := range want {
		if _, dup := wantByKey[s.key()]; !dup {
			wantByKey[s.key()] = s
		}
	}
	// Keep what is unchanged; stop the rest.
	var keptSubs []*subscription
	var keptCons []*consumer
	running := map[string]bool{}
	for i, s := range subs {
		w, wanted := wantByKey[s.key()]
		switch {
		case s.kind == runtimev1.PubsubSubscriptionType_DECLARATIVE && wanted && sameSubscription(s, w):
		case s.kind != runtimev1.PubsubSubscriptionType_DECLARATIVE && !wanted:
		default:
			cons[i].stop(ctx)
			a.log.Info("unsubscribed (reload)", "pubsub", s.pubsub, "topic", s.topic, "type", s.kind.String())
			continue
		}
		keptSubs, keptCons = append(keptSubs, s), append(keptCons, cons[i])
		running[s.key()] = true
	}
	d := a.deliverer()
	for _, s := range want {
		if running[s.key()] {
			continue
		}
		running[s.key()] = true
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
		a.log.Info("subscribed (reload)", "pubsub", s.pubsub, "topic", s.topic, "type", s.kind.String(), "rules", len(s.rules))
		keptSubs, keptCons = append(keptSubs, s), append(keptCons, c)
	}
	a.mu.Lock()
	stopped := a.stopping
	if !stopped {
		a.subs, a.consumers = keptSubs, keptCons
	}
	a.mu.Unlock()
	if stopped { // Stop ran meanwhile: stop what this reload started
		for _, c := range keptCons {
			c.stop(ctx)
		}
	}
}

// sameSubscription reports whether two subscriptions deliver identically.
func sameSubscription(a, b *subscription) bool {
	return a.raw == b.raw && a.bulk == b.bulk && a.source == b.source && proto.Equal(a.proto(), b.proto())
}
