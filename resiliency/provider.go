package resiliency

import (
	"cmp"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/outrigger/outrigger/proxy/resources"
)

// Provider maps targets to policies. Its configuration is immutable: a hot
// reload builds a new Provider (passing the old one with Previous, so
// breakers, budgets and ejections of unchanged targets keep their state) and
// swaps the pointer atomically. Breaker, budget and ejection state is safe
// for concurrent use. A nil *Provider hands out no-op policies (not even the
// built-in retries): build one from zero specs to get Dapr's defaults.
type Provider struct {
	cfg *compiled
	obs Observer
	log *slog.Logger
	clk clock

	appDefault        *targetDef
	actorDefault      *targetDef
	componentDefaults map[string][2]*targetDef // by Dapr component type ("" = other)

	// states of targets named in spec.targets, built by Build; read-only.
	states map[stateKey]*targetState
	// defaulted holds the state of targets that fall back to default
	// policies, for the most recently used defaultedTargetsMaxSize of them.
	defaultedMu sync.Mutex
	defaulted   *lru[stateKey, *targetState]

	ejector *Ejector
}

// stateKey identifies a target's state.
type stateKey struct{ kind, name, direction string }

func keyFor(t Target) stateKey { return stateKey{t.Kind, t.Name, t.Direction} }

// targetState is the mutable state of one target.
type targetState struct {
	def      *targetDef
	info     Target
	breakers *breakerSet // nil without a circuit breaker
	budget   *budget     // nil without a retry budget
}

// Option configures Build.
type Option func(*buildOptions)

type buildOptions struct {
	obs  Observer
	log  *slog.Logger
	prev *Provider
	clk  clock
}

// WithObserver sends counters to obs (the metrics exporter).
func WithObserver(obs Observer) Option { return func(o *buildOptions) { o.obs = obs } }

// WithLogger logs warnings (weakened built-in policies, …) and retries
// (DEBUG) to log.
func WithLogger(log *slog.Logger) Option { return func(o *buildOptions) { o.log = log } }

// Previous carries state over from the Provider being replaced: a target
// whose circuit breaker (or retry budget) is configured exactly as before
// keeps it, counts and state included; outlier ejections are kept for all
// apps.
func Previous(p *Provider) Option { return func(o *buildOptions) { o.prev = p } }

// Build validates the Resiliency manifests that apply to appID (empty
// scopes or scopes listing appID; later manifests override policies and
// targets of the same name, as in Dapr) and returns their Provider. Every
// problem is reported, each as "<file>:<line>: <field>: <message>", e.g.
// `resiliency.yaml:1: targets.apps.b.retry: unknown policy "x"`; on error
// the caller keeps its previous Provider.
func Build(specs []resources.Resiliency, appID string, opts ...Option) (*Provider, error) {
	o := buildOptions{obs: nopObserver{}, clk: realClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.obs == nil {
		o.obs = nopObserver{}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	cfg, err := compile(specs, appID, o.log)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		cfg: cfg, obs: o.obs, log: o.log, clk: o.clk,
		states:    map[stateKey]*targetState{},
		defaulted: newLRU[stateKey, *targetState](defaultedTargetsMaxSize),
	}
	p.appDefault = cfg.defaults(Target{Kind: KindApp, Direction: "outbound"}, []string{"App"})
	if p.appDefault.retry == nil {
		p.appDefault.retry = cfg.retries[BuiltInServiceRetries]
	}
	p.actorDefault = cfg.defaults(Target{Kind: KindActor, Direction: "outbound"}, []string{"Actor"})
	p.actorDefault.scope, p.actorDefault.cacheSize = "type", defaultActorCacheSize
	p.componentDefaults = map[string][2]*targetDef{}
	for _, typ := range append(slices.Collect(mapsValues(componentTypes)), "") {
		var defs [2]*targetDef
		for i, dir := range []string{"Outbound", "Inbound"} {
			levels := []string{"Component" + dir, "Component"}
			if typ != "" {
				levels = append([]string{typ + "Component" + dir}, levels...)
			}
			defs[i] = cfg.defaults(Target{Kind: KindComponent, Direction: directions[i], Category: typ}, levels)
		}
		p.componentDefaults[typ] = defs
	}

	prev := o.prev
	explicit := func(d *targetDef) {
		if d.stateful() {
			key := keyFor(d.info)
			p.states[key] = p.newState(d, d.info, prev.lookupState(key))
		}
	}
	for _, d := range cfg.apps {
		explicit(d)
	}
	for _, d := range cfg.actors {
		explicit(d)
	}
	for _, defs := range cfg.components {
		explicit(defs[outbound])
		explicit(defs[inbound])
	}
	if prev != nil {
		prev.defaultedMu.Lock()
		var old []*targetState
		prev.defaulted.each(func(_ stateKey, st *targetState) { old = append(old, st) })
		prev.defaultedMu.Unlock()
		for i := len(old) - 1; i >= 0; i-- { // least recent first, to keep the order
			st := old[i]
			if _, ok := p.states[keyFor(st.info)]; ok {
				continue
			}
			if d := p.defaultFor(st.info); d != nil && d.stateful() {
				p.defaulted.add(keyFor(st.info), p.newState(d, st.info, st))
			}
		}
	}

	p.ejector = &Ejector{spec: p.outlierFor, clk: o.clk, obs: o.obs, state: newEjectState()}
	if prev != nil {
		p.ejector.state = prev.ejector.state
	}
	return p, nil
}

// componentTypes maps component categories (as in a Component's type,
// "state.redis" → "state") to the names Dapr uses in default policy names.
var componentTypes = map[string]string{
	"state":         "Statestore",
	"pubsub":        "Pubsub",
	"bindings":      "Binding",
	"secretstores":  "Secretstore",
	"configuration": "Configuration",
	"lock":          "Lock",
	"crypto":        "Crypto",
}

func mapsValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, k := range sortedKeys(m) {
			if !yield(m[k]) {
				return
			}
		}
	}
}

// daprComponentType turns a category ("state", or Dapr's "Statestore") into
// Dapr's component type name, "" when unknown.
func daprComponentType(category string) string {
	if t, ok := componentTypes[strings.ToLower(category)]; ok {
		return t
	}
	for _, t := range componentTypes {
		if strings.EqualFold(t, category) {
			return t
		}
	}
	return ""
}

// defaults resolves the Default<Level><Kind>Policy names, the most specific
// level first, then Default<Kind>Policy; each kind is resolved on its own.
func (c *compiled) defaults(info Target, levels []string) *targetDef {
	d := &targetDef{info: info}
	names := func(kind string) []string {
		out := make([]string, 0, len(levels)+1)
		for _, l := range levels {
			out = append(out, "Default"+l+kind+"Policy")
		}
		return append(out, "Default"+kind+"Policy")
	}
	var from *origin
	note := func(o origin) {
		if from == nil {
			from = &o
		}
	}
	for _, n := range names("Timeout") {
		if t, ok := c.timeouts[n]; ok {
			d.timeout = t.d
			note(t.origin)
			break
		}
	}
	for _, n := range names("Retry") {
		if r, ok := c.retries[n]; ok {
			d.retry = r
			note(r.origin)
			break
		}
	}
	for _, n := range names("CircuitBreaker") {
		if cb, ok := c.breakers[n]; ok {
			d.breaker = cb
			note(cb.origin)
			break
		}
	}
	if info.Kind == KindApp {
		for _, n := range names("OutlierDetection") {
			if od, ok := c.outliers[n]; ok {
				d.outlier = od
				break
			}
		}
	}
	if from != nil {
		d.info.Resiliency, d.info.Namespace = from.name, from.namespace
	}
	return d
}

// defaultFor is the default definition a target without an entry in
// spec.targets falls back to; nil when it has an entry.
func (p *Provider) defaultFor(t Target) *targetDef {
	switch t.Kind {
	case KindApp:
		if _, ok := p.cfg.apps[t.Name]; !ok {
			return p.appDefault
		}
	case KindActor:
		if _, ok := p.cfg.actors[t.Name]; !ok {
			return p.actorDefault
		}
	case KindComponent:
		if _, ok := p.cfg.components[t.Name]; !ok {
			i := outbound
			if t.Direction == "inbound" {
				i = inbound
			}
			return p.componentDefaults[t.Category][i]
		}
	}
	return nil
}

func (p *Provider) lookupState(key stateKey) *targetState {
	if p == nil {
		return nil
	}
	if st, ok := p.states[key]; ok {
		return st
	}
	p.defaultedMu.Lock()
	defer p.defaultedMu.Unlock()
	st, _ := p.defaulted.get(key)
	return st
}

// newState makes the state of a target, reusing old's breakers and budget
// when they are configured the same.
func (p *Provider) newState(d *targetDef, info Target, old *targetState) *targetState {
	st := &targetState{def: d, info: info}
	meta := &breakerMeta{target: info, obs: p.obs}
	if d.breaker != nil {
		if old != nil && old.breakers != nil && old.breakers.key == keyOf(d) {
			st.breakers = old.breakers
			st.breakers.meta.Store(meta)
		} else {
			st.breakers = newBreakerSet(d, meta)
		}
	}
	if d.retry != nil && d.retry.budget != nil {
		if old != nil && old.budget != nil && old.budget.spec == *d.retry.budget {
			st.budget = old.budget
		} else {
			st.budget = newBudget(*d.retry.budget)
		}
	}
	return st
}

// policy returns the Policy of a target with definition d.
func (p *Provider) policy(d *targetDef, info Target, actorID string) Policy {
	if !d.stateful() {
		return Policy{p: p, def: d, info: info, actorID: actorID}
	}
	key := keyFor(info)
	st, ok := p.states[key]
	if !ok {
		p.defaultedMu.Lock()
		if st, ok = p.defaulted.get(key); !ok {
			st = p.newState(d, info, nil)
			p.defaulted.add(key, st)
		}
		p.defaultedMu.Unlock()
	}
	if st.breakers != nil {
		// The component category is only known from the caller.
		if m := st.breakers.meta.Load(); m.target != info {
			st.breakers.meta.Store(&breakerMeta{target: info, obs: m.obs})
		}
	}
	return Policy{p: p, def: d, st: st, info: info, actorID: actorID}
}

// App is the policy for service invocation of appID (outbound: this sidecar
// calling it): targets.apps.<appID>, else the DefaultApp…/Default… policies,
// with DaprBuiltInServiceRetries (retrying only gRPC Unavailable and
// Unauthenticated between sidecars) when no default retry policy exists.
// There is one circuit breaker per app; per instance, use the Ejector.
func (p *Provider) App(appID string) Policy {
	if p == nil {
		return Policy{}
	}
	d, ok := p.cfg.apps[appID]
	info := Target{Kind: KindApp, Name: appID, Direction: "outbound"}
	if ok {
		info = d.info
	} else {
		d = p.appDefault
		info.Resiliency, info.Namespace = d.info.Resiliency, d.info.Namespace
	}
	return p.policy(d, info, "")
}

// ComponentOutbound is the policy for calls to component name (state
// operations, publish, output bindings, secrets, configuration, lock).
// category is the component's category as in its type ("state", "pubsub",
// "bindings", "secretstores", "configuration", "lock", "crypto"; Dapr's
// "Statestore" etc. are accepted too); it selects the
// Default<Type>ComponentOutbound… policies.
func (p *Provider) ComponentOutbound(name, category string) Policy {
	return p.component(name, category, outbound)
}

// ComponentInbound is the policy for delivering a component's messages or
// events to the app (pub/sub delivery, input bindings).
func (p *Provider) ComponentInbound(name, category string) Policy {
	return p.component(name, category, inbound)
}

func (p *Provider) component(name, category string, dir int) Policy {
	if p == nil {
		return Policy{}
	}
	typ := daprComponentType(category)
	if defs, ok := p.cfg.components[name]; ok {
		d := defs[dir]
		info := d.info
		info.Category = typ
		return p.policy(d, info, "")
	}
	d := p.componentDefaults[typ][dir]
	info := Target{Kind: KindComponent, Name: name, Direction: directions[dir], Category: typ,
		Resiliency: d.info.Resiliency, Namespace: d.info.Namespace}
	return p.policy(d, info, "")
}

// Actor is the policy for calls to actor id of actorType: timeout, retry
// and circuit breaker of targets.actors.<actorType> (the breaker per type,
// per id — at most circuitBreakerCacheSize ids remembered — or both, as
// circuitBreakerScope says), else the DefaultActor…/Default… policies with
// one breaker per type.
func (p *Provider) Actor(actorType, id string) Policy {
	if p == nil {
		return Policy{}
	}
	d, ok := p.cfg.actors[actorType]
	info := Target{Kind: KindActor, Name: actorType, Direction: "outbound"}
	if ok {
		info = d.info
	} else {
		d = p.actorDefault
		info.Resiliency, info.Namespace = d.info.Resiliency, d.info.Namespace
	}
	return p.policy(d, info, id)
}

// BuiltIn is one of Dapr's built-in retry policies (BuiltInServiceRetries,
// …), as overridden by a retry policy of the same name; retries only. An
// unknown name gives a no-op Policy.
func (p *Provider) BuiltIn(name string) Policy {
	if p == nil || !isBuiltIn(name) {
		return Policy{}
	}
	rs := p.cfg.retries[name]
	info := Target{Kind: KindBuiltIn, Name: name, Resiliency: rs.origin.name, Namespace: rs.origin.namespace}
	return p.policy(&targetDef{info: info, retry: rs}, info, "")
}

// KindBuiltIn is the Target.Kind of built-in retry policies.
const KindBuiltIn = "builtin"

// Ejector is the outlier ejection of app instances under this Provider's
// outlierDetection policies. It shares its state with the Ejectors of the
// Providers built from this one with Previous.
func (p *Provider) Ejector() *Ejector {
	if p == nil {
		return nil
	}
	return p.ejector
}

func (p *Provider) outlierFor(appID string) *outlierSpec {
	if d, ok := p.cfg.apps[appID]; ok {
		return d.outlier
	}
	return p.appDefault.outlier
}

// Snapshot lists every circuit breaker that exists so far (breakers are
// made on first use), sorted by target and key.
func (p *Provider) Snapshot() []BreakerInfo {
	if p == nil {
		return nil
	}
	var sets []*breakerSet
	for _, st := range p.states {
		if st.breakers != nil {
			sets = append(sets, st.breakers)
		}
	}
	p.defaultedMu.Lock()
	p.defaulted.each(func(_ stateKey, st *targetState) {
		if st.breakers != nil {
			sets = append(sets, st.breakers)
		}
	})
	p.defaultedMu.Unlock()
	var out []BreakerInfo
	for _, s := range sets {
		out = append(out, s.infos()...)
	}
	slices.SortFunc(out, func(a, b BreakerInfo) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Key, b.Key))
	})
	return out
}
