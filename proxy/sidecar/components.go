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
	"google.golang.org/grpc"

	"github.com/outrigger/outrigger/plugins/host"
	"github.com/outrigger/outrigger/proxy/bindings"
	"github.com/outrigger/outrigger/proxy/configuration"
	"github.com/outrigger/outrigger/proxy/lock"
	"github.com/outrigger/outrigger/proxy/pubsub"
	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/secrets"
	"github.com/outrigger/outrigger/proxy/state"
	"github.com/outrigger/outrigger/resiliency"
)

// servedCategories are the component categories whose building block exists.
// A component of another category is reported and skipped, never a failed start.
var servedCategories = map[string]bool{"state": true, "secretstores": true, "pubsub": true, "lock": true, "configuration": true, "bindings": true}

// ownServices are Outrigger's component services (Dapr has no pluggable
// protocol for these categories); the host discovers them like Dapr's.
var ownServices = []host.ServiceType{
	{Service: "outrigger.components.v1.ConfigurationStore", Category: "configuration", HasFeatures: true},
	{Service: "outrigger.components.v1.LockStore", Category: "lock", HasFeatures: true},
}

// components are the provisioned components, by category and name.
type components struct {
	host   *host.Host
	byName map[string]map[string]*host.Component
	pols   *policies
}

// conn is a component's connection with its outbound resiliency policy applied.
func (cs *components) conn(c *host.Component) grpc.ClientConnInterface {
	name, category := c.Name, c.Category
	return resiliency.WrapConn(c.Conn(), func() resiliency.Policy {
		return cs.pols.current().ComponentOutbound(name, category)
	})
}

// startComponents starts the plugin host and provisions every component of a
// served category. Any failure (other than spec.ignoreErrors) stops the start,
// with an error naming the component and its file.
func startComponents(ctx context.Context, o *Options, set *resources.Set, pols *policies, log *slog.Logger) (*components, error) {
	appID := o.AppID
	h, err := host.New(host.Config{PluginsDir: o.PluginsPath, SocketsDir: o.SocketsPath, Logger: log, ExtraServices: ownServices})
	if err != nil {
		return nil, fmt.Errorf("plugin host: %w", err)
	}
	cs := &components{host: h, byName: map[string]map[string]*host.Component{}, pols: pols}
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

// table adapts one category's components to a building block's small
// Lookup/Names interface. base computes a block's view of a component once;
// live, when set, refreshes what can change while running (a restarted plugin
// may report new features).
type table[T any] struct {
	m     map[string]tableEntry[T]
	names []string
	live  func(T, *host.Component) T
}

type tableEntry[T any] struct {
	c    *host.Component
	base T
}

func newTable[T any](comps map[string]*host.Component, base func(*host.Component) T, live func(T, *host.Component) T) table[T] {
	t := table[T]{m: make(map[string]tableEntry[T], len(comps)), live: live}
	for n, c := range comps {
		t.m[n] = tableEntry[T]{c: c, base: base(c)}
		t.names = append(t.names, n)
	}
	sort.Strings(t.names)
	return t
}

func (t table[T]) Names() []string { return t.names }

func (t table[T]) Lookup(name string) (T, bool) {
	e, ok := t.m[name]
	if !ok {
		var zero T
		return zero, false
	}
	if t.live != nil {
		return t.live(e.base, e.c), true
	}
	return e.base, true
}

func (cs *components) stateStores() state.Stores {
	return newTable(cs.byName["state"], func(c *host.Component) state.Store {
		props := c.Spec().Properties()
		return state.Store{Name: c.Name, Conn: cs.conn(c), KeyPrefix: props["keyPrefix"],
			ActorStateStore: strings.EqualFold(props["actorStateStore"], "true")}
	}, func(s state.Store, c *host.Component) state.Store { s.Features = c.Features(); return s })
}

func (cs *components) brokers() pubsub.Brokers {
	return newTable(cs.byName["pubsub"], func(c *host.Component) pubsub.Broker {
		return pubsub.Broker{Name: c.Name, Conn: cs.conn(c), Properties: c.Spec().Properties()}
	}, func(b pubsub.Broker, c *host.Component) pubsub.Broker { b.Features = c.Features(); return b })
}

func (cs *components) bindings() bindings.Bindings {
	return newTable(cs.byName["bindings"], func(c *host.Component) bindings.Binding {
		return bindings.Binding{Name: c.Name, Conn: cs.conn(c), Properties: c.Spec().Properties(),
			Input:  c.Serves("dapr.proto.components.v1.InputBinding"),
			Output: c.Serves("dapr.proto.components.v1.OutputBinding")}
	}, func(b bindings.Binding, c *host.Component) bindings.Binding { b.Features = c.Features(); return b })
}

func (cs *components) lockStores() lock.Stores {
	return newTable(cs.byName["lock"], func(c *host.Component) lock.Store {
		return lock.Store{Name: c.Name, Conn: cs.conn(c), KeyPrefix: c.Spec().Properties()["keyPrefix"]}
	}, nil)
}

func (cs *components) configurationStores() configuration.Stores {
	return newTable(cs.byName["configuration"], func(c *host.Component) configuration.Store {
		return configuration.Store{Name: c.Name, Conn: cs.conn(c)}
	}, nil)
}

// secretStores reads the provisioned set at call time (not a table built
// once), so secretKeyRef resolution during start-up sees the stores
// provisioned before it.
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
	return secrets.Store{Name: c.Name, Conn: s.cs.conn(c), Features: c.Features()}, true
}
