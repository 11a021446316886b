package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// components are the provisioned components. Building blocks look them up
// through a snapshot swapped whole on reload, so a call sees either the old
// set or the new one, never half of each.
type components struct {
	host  *host.Host
	pols  *policies
	appID string
	log   *slog.Logger
	cur   atomic.Pointer[snapshot]
	mu    sync.Mutex // serialises reloads
}

// snapshot is one generation of provisioned components and the blocks' views of them.
type snapshot struct {
	byName   map[string]map[string]*host.Component // category → name → component
	specs    map[string]resources.Component        // category/name → manifest as loaded
	state    table[state.Store]
	pubsub   table[pubsub.Broker]
	bindings table[bindings.Binding]
	lock     table[lock.Store]
	config   table[configuration.Store]
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
	h, err := host.New(host.Config{PluginsDir: o.PluginsPath, SocketsDir: o.SocketsPath, Logger: log, ExtraServices: ownServices})
	if err != nil {
		return nil, fmt.Errorf("plugin host: %w", err)
	}
	cs := &components{host: h, pols: pols, appID: o.AppID, log: log}
	cs.publish(map[string]map[string]*host.Component{}, map[string]resources.Component{})
	// Secret stores first, so the others' secretKeyRefs resolve.
	ordered, err := secrets.Order(set.Components)
	if err != nil {
		_ = h.Close(context.Background())
		return nil, err
	}
	byName, specs := map[string]map[string]*host.Component{}, map[string]resources.Component{}
	for _, rc := range ordered {
		c, err := cs.provision(ctx, rc, nil)
		if err != nil {
			_ = h.Close(context.Background())
			return nil, err
		}
		if c != nil {
			add(byName, c)
			specs[key(rc)] = rc
			if c.Category == "secretstores" {
				cs.publish(byName, specs) // later components' secretKeyRefs may use it
			}
		}
	}
	cs.publish(byName, specs)
	return cs, nil
}

func key(rc resources.Component) string { return rc.Category() + "/" + rc.Name }

func add(byName map[string]map[string]*host.Component, c *host.Component) {
	if byName[c.Category] == nil {
		byName[c.Category] = map[string]*host.Component{}
	}
	byName[c.Category][c.Name] = c
}

// provision starts one component (replacing old when set): secretKeyRefs
// resolved, pub/sub consumer group defaulted. It returns nil, nil for a
// component that is skipped (a category with no building block yet, or
// spec.ignoreErrors).
func (cs *components) provision(ctx context.Context, rc resources.Component, old *host.Component) (*host.Component, error) {
	if !servedCategories[rc.Category()] {
		cs.log.Warn("component skipped: its building block is not available yet", "component", rc.Name, "type", rc.Type, "file", rc.Location())
		return nil, nil
	}
	var err error
	if secrets.NeedsSecrets(rc) {
		if rc, err = secrets.ResolveRefs(ctx, rc, secrets.StoreGetter(cs.secretStores())); err != nil {
			return nil, err
		}
	}
	if rc.Category() == "pubsub" {
		rc = withConsumerID(rc, cs.appID)
	}
	var c *host.Component
	if old != nil {
		c, err = cs.host.Replace(ctx, old, rc)
	} else {
		c, err = cs.host.Provision(ctx, rc)
	}
	if errors.Is(err, host.ErrIgnored) {
		return nil, nil // logged by the host
	}
	if err != nil {
		return nil, fmt.Errorf("component %q (%s): %w", rc.Name, rc.Location(), err)
	}
	return c, nil
}

// publish swaps in a new generation and the blocks' views of it.
func (cs *components) publish(byName map[string]map[string]*host.Component, specs map[string]resources.Component) {
	snap := &snapshot{byName: byName, specs: specs}
	snap.state = newTable(byName["state"], func(c *host.Component) state.Store {
		props := c.Spec().Properties()
		return state.Store{Name: c.Name, Conn: cs.conn(c), KeyPrefix: props["keyPrefix"],
			ActorStateStore: strings.EqualFold(props["actorStateStore"], "true")}
	}, func(s state.Store, c *host.Component) state.Store { s.Features = c.Features(); return s })
	snap.pubsub = newTable(byName["pubsub"], func(c *host.Component) pubsub.Broker {
		return pubsub.Broker{Name: c.Name, Conn: cs.conn(c), Properties: c.Spec().Properties()}
	}, func(b pubsub.Broker, c *host.Component) pubsub.Broker { b.Features = c.Features(); return b })
	snap.bindings = newTable(byName["bindings"], func(c *host.Component) bindings.Binding {
		return bindings.Binding{Name: c.Name, Conn: cs.conn(c), Properties: c.Spec().Properties(),
			Input:  c.Serves("dapr.proto.components.v1.InputBinding"),
			Output: c.Serves("dapr.proto.components.v1.OutputBinding")}
	}, func(b bindings.Binding, c *host.Component) bindings.Binding { b.Features = c.Features(); return b })
	snap.lock = newTable(byName["lock"], func(c *host.Component) lock.Store {
		return lock.Store{Name: c.Name, Conn: cs.conn(c), KeyPrefix: c.Spec().Properties()["keyPrefix"]}
	}, nil)
	snap.config = newTable(byName["configuration"], func(c *host.Component) configuration.Store {
		return configuration.Store{Name: c.Name, Conn: cs.conn(c)}
	}, nil)
	cs.cur.Store(snap)
}

// reload applies a changed set of Component manifests: new ones are
// provisioned, changed ones replaced (the new instance is ready before it
// takes over), removed ones dropped; the new generation is swapped in whole,
// then the old instances are removed once calls in flight on them have had
// drain to finish. A component that fails keeps its previous version (or
// stays absent); the error is returned for the log.
func (cs *components) reload(ctx context.Context, set []resources.Component, drain time.Duration) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	old := cs.cur.Load()
	byName := map[string]map[string]*host.Component{}
	specs := map[string]resources.Component{}
	var retired []*host.Component
	var errs []error
	ordered, err := secrets.Order(set)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, rc := range ordered {
		k := key(rc)
		seen[k] = true
		prev := old.byName[rc.Category()][rc.Name]
		if prev != nil && sameSpec(old.specs[k], rc) {
			add(byName, prev) // unchanged
			specs[k] = old.specs[k]
			continue
		}
		c, err := cs.provision(ctx, rc, prev)
		switch {
		case err != nil:
			errs = append(errs, err)
			if prev != nil {
				add(byName, prev) // keep the last good version
				specs[k] = old.specs[k]
			}
		case c != nil:
			add(byName, c)
			specs[k] = rc
			if prev != nil {
				retired = append(retired, prev)
				cs.log.Info("component updated", "component", rc.Name, "type", rc.Type)
			} else {
				cs.log.Info("component added", "component", rc.Name, "type", rc.Type)
			}
		}
	}
	for k, prevSpec := range old.specs {
		if !seen[k] {
			if c := old.byName[prevSpec.Category()][prevSpec.Name]; c != nil {
				retired = append(retired, c)
				cs.log.Info("component removed", "component", prevSpec.Name, "type", prevSpec.Type)
			}
		}
	}
	cs.publish(byName, specs)
	if len(retired) > 0 {
		time.AfterFunc(drain, func() {
			for _, c := range retired {
				cs.host.Remove(c)
			}
		})
	}
	return errors.Join(errs...)
}

// sameSpec reports whether two manifests configure a component identically
// (where in which file they stand does not matter).
func sameSpec(a, b resources.Component) bool {
	a.File, a.Line, b.File, b.Line = "", 0, "", 0
	return reflect.DeepEqual(a, b)
}

// registered is what /v1.0/metadata lists.
func (cs *components) registered() []*runtimev1.RegisteredComponents {
	var out []*runtimev1.RegisteredComponents
	for _, byName := range cs.cur.Load().byName {
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

// live is a block's view that always reads the current generation.
type live[T any] struct{ get func() table[T] }

func (l live[T]) Names() []string              { return l.get().Names() }
func (l live[T]) Lookup(name string) (T, bool) { return l.get().Lookup(name) }

func (cs *components) stateStores() state.Stores {
	return live[state.Store]{func() table[state.Store] { return cs.cur.Load().state }}
}

func (cs *components) brokers() pubsub.Brokers {
	return live[pubsub.Broker]{func() table[pubsub.Broker] { return cs.cur.Load().pubsub }}
}

func (cs *components) bindings() bindings.Bindings {
	return live[bindings.Binding]{func() table[bindings.Binding] { return cs.cur.Load().bindings }}
}

func (cs *components) lockStores() lock.Stores {
	return live[lock.Store]{func() table[lock.Store] { return cs.cur.Load().lock }}
}

func (cs *components) configurationStores() configuration.Stores {
	return live[configuration.Store]{func() table[configuration.Store] { return cs.cur.Load().config }}
}

// secretStores reads the provisioned set at call time (not a table built
// once), so secretKeyRef resolution during start-up sees the stores
// provisioned before it.
func (cs *components) secretStores() secrets.Stores { return secretStores{cs} }

type secretStores struct{ cs *components }

func (s secretStores) Names() []string {
	stores := s.cs.cur.Load().byName["secretstores"]
	names := make([]string, 0, len(stores))
	for n := range stores {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s secretStores) Lookup(name string) (secrets.Store, bool) {
	c, ok := s.cs.cur.Load().byName["secretstores"][name]
	if !ok {
		return secrets.Store{}, false
	}
	return secrets.Store{Name: c.Name, Conn: s.cs.conn(c), Features: c.Features()}, true
}
