package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"

	"github.com/outrigger/outrigger/plugins/host"
	"github.com/outrigger/outrigger/proxy/pubsub"
	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/secrets"
	"github.com/outrigger/outrigger/proxy/state"
)

// servedCategories are the component categories whose building block exists.
// A component of another category is reported and skipped, never a failed start.
var servedCategories = map[string]bool{"state": true, "secretstores": true, "pubsub": true}

// components are the provisioned components, by category and name.
type components struct {
	host   *host.Host
	byName map[string]map[string]*host.Component
}

// startComponents starts the plugin host and provisions every component of a
// served category. Any failure (other than spec.ignoreErrors) stops the start,
// with an error naming the component and its file.
func startComponents(ctx context.Context, o *Options, set *resources.Set, log *slog.Logger) (*components, error) {
	appID := o.AppID
	h, err := host.New(host.Config{PluginsDir: o.PluginsPath, SocketsDir: o.SocketsPath, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("plugin host: %w", err)
	}
	cs := &components{host: h, byName: map[string]map[string]*host.Component{}}
	// Secret stores first, so the others' secretKeyRefs resolve.
	ordered, err := secrets.Order(set.Components)
	if err != nil {
		_ = h.Close(context.Background())
		return nil, err
	}
	getSecret := secrets.StoreGetter(cs.secretStores())
	for _, rc := range ordered {
		if !servedCategories[rc.Category()] {
			log.Warn("component skipped: its building block is not available yet", "component", rc.Name, "type", rc.Type, "file", rc.Location())
			continue
		}
		if secrets.NeedsSecrets(rc) {
			if rc, err = secrets.ResolveRefs(ctx, rc, getSecret); err != nil {
				_ = h.Close(context.Background())
				return nil, err
			}
		}
		if rc.Category() == "pubsub" {
			rc = withConsumerID(rc, appID)
		}
		c, err := h.Provision(ctx, rc)
		if errors.Is(err, host.ErrIgnored) {
			continue // logged by the host
		}
		if err != nil {
			_ = h.Close(context.Background())
			return nil, fmt.Errorf("component %q (%s): %w", rc.Name, rc.Location(), err)
		}
		if cs.byName[c.Category] == nil {
			cs.byName[c.Category] = map[string]*host.Component{}
		}
		cs.byName[c.Category][c.Name] = c
	}
	return cs, nil
}

// registered is what /v1.0/metadata lists.
func (cs *components) registered() []*runtimev1.RegisteredComponents {
	var out []*runtimev1.RegisteredComponents
	for _, byName := range cs.byName {
		for _, c := range byName {
			v := c.Version
			if v == "" {
				v = "v1"
			}
			out = append(out, &runtimev1.RegisteredComponents{Name: c.Name, Type: c.Type, Version: v, Capabilities: c.Features()})
		}
	}
	return out
}

// extended adds the plugins' state to the metadata's extended attributes.
func (cs *components) extended() map[string]string {
	b, err := json.Marshal(cs.host.Plugins())
	if err != nil {
		return nil
	}
	return map[string]string{"outrigger.plugins": string(b)}
}

// withConsumerID gives a pub/sub component Dapr's default consumer group (the
// app id) unless its YAML sets consumerID; the manifest itself is not changed.
func withConsumerID(rc resources.Component, appID string) resources.Component {
	props := pubsub.InitMetadata(rc.Properties(), appID)
	for _, m := range rc.Metadata {
		if m.Name == "consumerID" {
			return rc
		}
	}
	rc.Metadata = append(slices.Clone(rc.Metadata), resources.MetadataItem{Name: "consumerID", Value: props["consumerID"]})
	return rc
}

// brokers adapts the pub/sub components to the pub/sub building block.
func (cs *components) brokers() pubsub.Brokers {
	b := brokers{m: map[string]broker{}}
	for n, c := range cs.byName["pubsub"] {
		b.m[n] = broker{c: c, base: pubsub.Broker{Name: c.Name, Conn: c.Conn(), Properties: c.Spec().Properties()}}
		b.names = append(b.names, n)
	}
	sort.Strings(b.names)
	return b
}

type broker struct {
	c    *host.Component
	base pubsub.Broker
}

type brokers struct {
	m     map[string]broker
	names []string
}

func (b brokers) Names() []string { return b.names }

func (b brokers) Lookup(name string) (pubsub.Broker, bool) {
	e, ok := b.m[name]
	if !ok {
		return pubsub.Broker{}, false
	}
	br := e.base
	br.Features = e.c.Features()
	return br, true
}

// secretStores adapts the secret stores to the secrets building block; it
// reads the provisioned set at call time, so it sees stores added later in
// start-up.
func (cs *components) secretStores() secrets.Stores { return secretStores{cs} }

type secretStores struct{ cs *components }

func (s secretStores) Names() []string {
	names := make([]string, 0, len(s.cs.byName["secretstores"]))
	for n := range s.cs.byName["secretstores"] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s secretStores) Lookup(name string) (secrets.Store, bool) {
	c, ok := s.cs.byName["secretstores"][name]
	if !ok {
		return secrets.Store{}, false
	}
	return secrets.Store{Name: c.Name, Conn: c.Conn(), Features: c.Features()}, true
}

// stateStores adapts the state components to the state building block.
func (cs *components) stateStores() state.Stores {
	ss := stateStores{m: map[string]stateStore{}}
	for n, c := range cs.byName["state"] {
		props := c.Spec().Properties()
		ss.m[n] = stateStore{c: c, base: state.Store{
			Name: c.Name, Conn: c.Conn(), KeyPrefix: props["keyPrefix"],
			ActorStateStore: strings.EqualFold(props["actorStateStore"], "true"),
		}}
		ss.names = append(ss.names, n)
	}
	sort.Strings(ss.names)
	return ss
}

type stateStore struct {
	c    *host.Component
	base state.Store
}

type stateStores struct {
	m     map[string]stateStore
	names []string
}

func (s stateStores) Names() []string { return s.names }

// Lookup is on every state call: the static parts are computed once, the
// features read live (a restarted plugin may report new ones).
func (s stateStores) Lookup(name string) (state.Store, bool) {
	e, ok := s.m[name]
	if !ok {
		return state.Store{}, false
	}
	st := e.base
	st.Features = e.c.Features()
	return st, true
}
