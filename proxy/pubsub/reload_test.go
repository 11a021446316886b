package pubsub

import (
	"context"
	"testing"

	"github.com/outrigger/outrigger/proxy/resources"
)

// TestReloadSubscriptions changes the declarative subscriptions of a running
// block: a new topic is consumed, a changed route takes effect, a removed
// subscription stops, and an unchanged one keeps delivering.
func TestReloadSubscriptions(t *testing.T) {
	ta := &testApp{}
	sub := func(topic, route string) resources.Subscription {
		return resources.Subscription{Name: topic, PubsubName: "ps", Topic: topic, Routes: resources.Routes{Default: route}}
	}
	a, _ := startHTTP(t, ta, []resources.Subscription{sub("keep", "/keep"), sub("move", "/old"), sub("gone", "/gone")})
	publishJSON(t, a, "keep", `{"n":1}`, nil)
	eventually(t, "the first delivery", func() bool { return len(ta.on("/keep")) == 1 })

	a.Reload(context.Background(), []resources.Subscription{sub("keep", "/keep"), sub("move", "/new"), sub("added", "/added")})

	publishJSON(t, a, "keep", `{"n":2}`, nil)
	publishJSON(t, a, "move", `{}`, nil)
	publishJSON(t, a, "added", `{}`, nil)
	eventually(t, "deliveries after the reload", func() bool {
		return len(ta.on("/keep")) == 2 && len(ta.on("/new")) == 1 && len(ta.on("/added")) == 1
	})
	publishJSON(t, a, "gone", `{}`, nil)
	publishJSON(t, a, "keep", `{"n":3}`, nil) // delivered after anything sent before it on other topics had its chance
	eventually(t, "the last delivery", func() bool { return len(ta.on("/keep")) == 3 })
	if n := len(ta.on("/old")); n != 0 {
		t.Errorf("the changed subscription's old route got %d events", n)
	}
	if n := len(ta.on("/gone")); n != 0 {
		t.Errorf("the removed subscription got %d events", n)
	}
	var topics []string
	for _, s := range a.Subscriptions() {
		topics = append(topics, s.GetTopic())
	}
	if len(topics) != 3 {
		t.Errorf("metadata lists %v, want keep, move, added", topics)
	}
}
