package resiliency

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc/codes"

	"github.com/outrigger/outrigger/proxy/resources"
)

// Built-in retry policy names (Dapr's). A retry policy of the same name in
// a Resiliency spec replaces the built-in one but cannot weaken it below 3
// retries; DaprBuiltInActorNotFoundRetries cannot be replaced.
const (
	BuiltInServiceRetries        = "DaprBuiltInServiceRetries"
	BuiltInActorRetries          = "DaprBuiltInActorRetries"
	BuiltInActorReminderRetries  = "DaprBuiltInActorReminderRetries"
	BuiltInActorNotFoundRetries  = "DaprBuiltInActorNotFoundRetries"
	BuiltInInitializationRetries = "DaprBuiltInInitializationRetries"
)

// Defaults (Dapr's, except where marked as Outrigger extensions).
const (
	defaultRetryDuration    = 5 * time.Second
	defaultInitialInterval  = 500 * time.Millisecond
	defaultMaxInterval      = 60 * time.Second
	backoffMultiplier       = 1.5
	backoffRandomization    = 0.5
	defaultBreakerTimeout   = 60 * time.Second
	defaultAppCacheSize     = 100
	defaultActorCacheSize   = 5000
	defaultBudgetPercent    = 20
	defaultBudgetMinPerSec  = 3
	defaultEjectFailures    = 5
	defaultBaseEjection     = 30 * time.Second
	defaultMaxEjection      = 300 * time.Second
	defaultMaxEjectPercent  = 50
	minBuiltInRetries       = 3
	defaultedTargetsMaxSize = 1024
)

// origin is the manifest a policy or target came from.
type origin struct{ name, namespace string }

type retrySpec struct {
	name        string
	exponential bool
	duration    time.Duration // constant interval
	maxInterval time.Duration // exponential cap
	maxRetries  int           // -1 = forever
	match       matcher
	budget      *budgetSpec
	origin      origin
}

type cbSpec struct {
	name        string
	maxRequests uint32
	interval    time.Duration
	timeout     time.Duration
	trip        string
	readyToTrip func(gobreaker.Counts) bool
	origin      origin
}

type outlierSpec struct {
	name                string
	consecutiveFailures int
	baseEjection        time.Duration
	maxEjection         time.Duration
	maxPercent          float64
	origin              origin
}

type timeoutSpec struct {
	d      time.Duration
	origin origin
}

// targetDef is the resolved policies of one target (or of all targets that
// fall back to the same defaults).
type targetDef struct {
	info      Target
	timeout   time.Duration
	retry     *retrySpec
	breaker   *cbSpec
	scope     string // actors: "type", "id" or "both"
	cacheSize int    // actors: breakers kept per type when scoped by id
	outlier   *outlierSpec
}

// stateful reports whether targets of this definition keep state.
func (d *targetDef) stateful() bool {
	return d.breaker != nil || (d.retry != nil && d.retry.budget != nil)
}

// compiled is the merged, validated configuration of a Build.
type compiled struct {
	timeouts map[string]timeoutSpec
	retries  map[string]*retrySpec
	breakers map[string]*cbSpec
	outliers map[string]*outlierSpec

	apps       map[string]*targetDef
	actors     map[string]*targetDef
	components map[string][2]*targetDef // [outbound, inbound]; nil = none set
}

const (
	outbound = 0
	inbound  = 1
)

var directions = [2]string{"outbound", "inbound"}

// errorList collects "location: field: message" errors.
type errorList []error

func (l *errorList) add(r resources.Resiliency, field, format string, args ...any) {
	*l = append(*l, fmt.Errorf("%s: %s: %s", location(r), field, fmt.Sprintf(format, args...)))
}

// pendingTarget is a target waiting for policy names to be resolved once
// every manifest's policies are known (a target may use a policy of another
// manifest, as in Dapr).
type pendingTarget struct {
	r       resources.Resiliency
	field   string // "targets.apps.b"
	names   resources.PolicyNames
	outlier string
	def     *targetDef
}

func compile(specs []resources.Resiliency, appID string, log *slog.Logger) (*compiled, error) {
	trips, err := newTripCompiler()
	if err != nil {
		return nil, err
	}
	c := &compiled{
		timeouts:   map[string]timeoutSpec{},
		retries:    builtInRetries(),
		breakers:   map[string]*cbSpec{},
		outliers:   map[string]*outlierSpec{},
		apps:       map[string]*targetDef{},
		actors:     map[string]*targetDef{},
		components: map[string][2]*targetDef{},
	}
	var errs errorList
	var pending []pendingTarget
	var ext extReader
	for _, r := range specs {
		if len(r.Scopes) > 0 && !slices.Contains(r.Scopes, appID) {
			continue
		}
		x, err := ext.read(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o := origin{r.Name, r.Namespace}
		c.compilePolicies(r, x, o, trips, log, &errs)
		pending = append(pending, c.targets(r, x, o, &errs)...)
	}
	for _, p := range pending {
		c.resolve(p, &errs)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func (c *compiled) compilePolicies(r resources.Resiliency, x *extSpec, o origin, trips *tripCompiler, log *slog.Logger, errs *errorList) {
	p := r.Policies
	for _, name := range sortedKeys(p.Timeouts) {
		d, err := parseDuration(p.Timeouts[name])
		if err != nil {
			errs.add(r, "policies.timeouts."+name, "%v", err)
			continue
		}
		c.timeouts[name] = timeoutSpec{d, o}
	}
	for _, name := range sortedKeys(p.Retries) {
		field := "policies.retries." + name
		if name == BuiltInActorNotFoundRetries {
			log.Warn("resiliency: the built-in retry policy cannot be overridden; ignored",
				"policy", name, "file", location(r))
			continue
		}
		rs, ok := compileRetry(r, field, name, p.Retries[name], errs)
		if !ok {
			continue
		}
		rs.origin = o
		if xr, ok := x.Policies.Retries[name]; ok {
			if !compileRetryExt(r, field, rs, xr.Matching, xr.Budget, errs) {
				continue
			}
		}
		if builtin, ok := c.retries[name]; ok && isBuiltIn(name) {
			if rs.maxRetries >= 0 && rs.maxRetries < minBuiltInRetries {
				log.Warn("resiliency: a built-in retry policy cannot be weakened below 3 retries; using 3",
					"policy", name, "file", location(r))
				rs.maxRetries = minBuiltInRetries
			}
			if rs.match.http == nil && rs.match.grpc == nil {
				rs.match = builtin.match // keep what the built-in retries on
			}
		}
		c.retries[name] = rs
	}
	for _, name := range sortedKeys(p.CircuitBreakers) {
		cb, ok := compileBreaker(r, "policies.circuitBreakers."+name, name, p.CircuitBreakers[name], trips, errs)
		if ok {
			cb.origin = o
			c.breakers[name] = cb
		}
	}
	for _, name := range sortedKeys(x.Policies.OutlierDetections) {
		raw := x.Policies.OutlierDetections[name]
		field := "policies.outlierDetections." + name
		od := &outlierSpec{name: name, consecutiveFailures: defaultEjectFailures, baseEjection: defaultBaseEjection,
			maxEjection: defaultMaxEjection, maxPercent: defaultMaxEjectPercent, origin: o}
		ok := true
		if v := raw.ConsecutiveFailures; v != nil {
			if *v < 1 {
				errs.add(r, field+".consecutiveFailures", "%d is not a positive count", *v)
				ok = false
			}
			od.consecutiveFailures = *v
		}
		if raw.BaseEjectionTime != "" {
			d, err := parsePositiveDuration(string(raw.BaseEjectionTime))
			if err != nil {
				errs.add(r, field+".baseEjectionTime", "%v", err)
				ok = false
			}
			od.baseEjection = d
		}
		if raw.MaxEjectionTime != "" {
			d, err := parsePositiveDuration(string(raw.MaxEjectionTime))
			if err != nil {
				errs.add(r, field+".maxEjectionTime", "%v", err)
				ok = false
			}
			od.maxEjection = d
		}
		if od.maxEjection < od.baseEjection {
			od.maxEjection = od.baseEjection
		}
		if v := raw.MaxEjectionPercent; v != nil {
			if *v < 0 || *v > 100 {
				errs.add(r, field+".maxEjectionPercent", "%v is not within 0-100", *v)
				ok = false
			}
			od.maxPercent = *v
		}
		if ok {
			c.outliers[name] = od
		}
	}
}

func compileRetry(r resources.Resiliency, field, name string, raw resources.Retry, errs *errorList) (*retrySpec, bool) {
	rs := &retrySpec{name: name, duration: defaultRetryDuration, maxInterval: defaultMaxInterval, maxRetries: -1}
	ok := true
	switch strings.ToLower(raw.Policy) {
	case "", "constant":
	case "exponential":
		rs.exponential = true
	default:
		errs.add(r, field+".policy", "%q is neither constant nor exponential", raw.Policy)
		ok = false
	}
	if raw.Duration != "" {
		d, err := parseDuration(raw.Duration)
		if err != nil {
			errs.add(r, field+".duration", "%v", err)
			ok = false
		}
		rs.duration = d
	}
	if raw.MaxInterval != "" {
		d, err := parsePositiveDuration(raw.MaxInterval)
		if err != nil {
			errs.add(r, field+".maxInterval", "%v", err)
			ok = false
		}
		rs.maxInterval = d
	}
	if raw.MaxRetries != nil {
		if *raw.MaxRetries < -1 {
			errs.add(r, field+".maxRetries", "%d: use -1 to retry forever, 0 for no retries", *raw.MaxRetries)
			ok = false
		}
		rs.maxRetries = *raw.MaxRetries
	}
	return rs, ok
}

func compileRetryExt(r resources.Resiliency, field string, rs *retrySpec,
	matching *struct {
		HTTPStatusCodes text `json:"httpStatusCodes"`
		GRPCStatusCodes text `json:"gRPCStatusCodes"`
	},
	b *struct {
		Percent             *float64 `json:"percent"`
		MinRetriesPerSecond *float64 `json:"minRetriesPerSecond"`
	}, errs *errorList,
) bool {
	ok := true
	if matching != nil {
		var err error
		if rs.match.http, err = parseCodes(string(matching.HTTPStatusCodes), 100, 599); err != nil {
			errs.add(r, field+".matching.httpStatusCodes", "%v", err)
			ok = false
		}
		if rs.match.grpc, err = parseCodes(string(matching.GRPCStatusCodes), 0, 16); err != nil {
			errs.add(r, field+".matching.gRPCStatusCodes", "%v", err)
			ok = false
		}
	}
	if b != nil {
		bs := budgetSpec{percent: defaultBudgetPercent, minPerSecond: defaultBudgetMinPerSec}
		if b.Percent != nil {
			if *b.Percent < 0 {
				errs.add(r, field+".budget.percent", "%v is negative", *b.Percent)
				ok = false
			}
			bs.percent = *b.Percent
		}
		if b.MinRetriesPerSecond != nil {
			if *b.MinRetriesPerSecond < 0 {
				errs.add(r, field+".budget.minRetriesPerSecond", "%v is negative", *b.MinRetriesPerSecond)
				ok = false
			}
			bs.minPerSecond = *b.MinRetriesPerSecond
		}
		rs.budget = &bs
	}
	return ok
}

func compileBreaker(r resources.Resiliency, field, name string, raw resources.CircuitBreaker, trips *tripCompiler, errs *errorList) (*cbSpec, bool) {
	cb := &cbSpec{name: name, maxRequests: 1, timeout: defaultBreakerTimeout, trip: DefaultTrip}
	ok := true
	switch {
	case raw.MaxRequests < 0 || int64(raw.MaxRequests) > int64(^uint32(0)):
		errs.add(r, field+".maxRequests", "%d is not a count of requests", raw.MaxRequests)
		ok = false
	case raw.MaxRequests > 0:
		cb.maxRequests = uint32(raw.MaxRequests)
	}
	if raw.Interval != "" {
		d, err := parseDuration(raw.Interval)
		if err != nil {
			errs.add(r, field+".interval", "%v", err)
			ok = false
		}
		cb.interval = d
	}
	if raw.Timeout != "" {
		d, err := parseDuration(raw.Timeout)
		if err != nil {
			errs.add(r, field+".timeout", "%v", err)
			ok = false
		}
		if d > 0 {
			cb.timeout = d
		}
	}
	if strings.TrimSpace(raw.Trip) != "" {
		cb.trip = raw.Trip
	}
	fn, err := trips.compile(cb.trip)
	if err != nil {
		errs.add(r, field+".trip", "%v", err)
		ok = false
	}
	cb.readyToTrip = fn
	return cb, ok
}

// targets records the manifest's targets; their policy names are resolved
// after all manifests are read.
func (c *compiled) targets(r resources.Resiliency, x *extSpec, o origin, errs *errorList) []pendingTarget {
	var out []pendingTarget
	t := r.Targets
	for _, id := range sortedKeys(t.Apps) {
		a := t.Apps[id]
		def := &targetDef{info: Target{Kind: KindApp, Name: id, Direction: "outbound", Resiliency: o.name, Namespace: o.namespace}}
		field := "targets.apps." + id
		switch {
		case a.CircuitBreakerCacheSize < 0:
			errs.add(r, field+".circuitBreakerCacheSize", "%d is negative", a.CircuitBreakerCacheSize)
		case a.CircuitBreakerCacheSize > 0:
			def.cacheSize = a.CircuitBreakerCacheSize
		default:
			def.cacheSize = defaultAppCacheSize
		}
		c.apps[id] = def
		out = append(out, pendingTarget{r: r, field: field, names: a.PolicyNames,
			outlier: x.Targets.Apps[id].OutlierDetection, def: def})
	}
	for _, typ := range sortedKeys(t.Actors) {
		a := t.Actors[typ]
		field := "targets.actors." + typ
		def := &targetDef{info: Target{Kind: KindActor, Name: typ, Direction: "outbound", Resiliency: o.name, Namespace: o.namespace},
			scope: a.CircuitBreakerScope, cacheSize: a.CircuitBreakerCacheSize}
		switch a.CircuitBreakerScope {
		case "id", "type", "both":
		case "":
			if a.CircuitBreaker != "" {
				errs.add(r, field+".circuitBreakerScope", "required with a circuitBreaker: id, type or both")
			}
		default:
			errs.add(r, field+".circuitBreakerScope", "%q is not id, type or both", a.CircuitBreakerScope)
		}
		if a.CircuitBreakerCacheSize < 0 {
			errs.add(r, field+".circuitBreakerCacheSize", "%d is negative", a.CircuitBreakerCacheSize)
		}
		if def.cacheSize <= 0 {
			def.cacheSize = defaultActorCacheSize
		}
		c.actors[typ] = def
		out = append(out, pendingTarget{r: r, field: field, names: a.PolicyNames, def: def})
	}
	for _, name := range sortedKeys(t.Components) {
		cp := t.Components[name]
		var defs [2]*targetDef
		for i, names := range [2]resources.PolicyNames{cp.Outbound, cp.Inbound} {
			defs[i] = &targetDef{info: Target{Kind: KindComponent, Name: name, Direction: directions[i],
				Resiliency: o.name, Namespace: o.namespace}}
			out = append(out, pendingTarget{r: r, field: "targets.components." + name + "." + directions[i],
				names: names, def: defs[i]})
		}
		c.components[name] = defs
	}
	return out
}

// resolve fills a target's policies from their names.
func (c *compiled) resolve(p pendingTarget, errs *errorList) {
	if n := p.names.Timeout; n != "" {
		if t, ok := c.timeouts[n]; ok {
			p.def.timeout = t.d
		} else {
			errs.add(p.r, p.field+".timeout", "unknown policy %q%s", n, known(c.timeouts))
		}
	}
	if n := p.names.Retry; n != "" {
		if rs, ok := c.retries[n]; ok {
			p.def.retry = rs
		} else {
			errs.add(p.r, p.field+".retry", "unknown policy %q%s", n, known(c.retries))
		}
	}
	if n := p.names.CircuitBreaker; n != "" {
		if cb, ok := c.breakers[n]; ok {
			p.def.breaker = cb
		} else {
			errs.add(p.r, p.field+".circuitBreaker", "unknown policy %q%s", n, known(c.breakers))
		}
	}
	if n := p.outlier; n != "" {
		if od, ok := c.outliers[n]; ok {
			p.def.outlier = od
		} else {
			errs.add(p.r, p.field+".outlierDetection", "unknown policy %q%s", n, known(c.outliers))
		}
	}
}

func known[V any](m map[string]V) string {
	if len(m) == 0 {
		return " (none defined)"
	}
	names := sortedKeys(m)
	if len(names) > 10 {
		names = append(names[:10], "…")
	}
	return " (defined: " + strings.Join(names, ", ") + ")"
}

// parseDuration reads a duration as Dapr does: a bare integer is
// milliseconds, anything else a Go duration ("5s", "1m30s").
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if i < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return time.Duration(i) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 5s or 500ms", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

func parsePositiveDuration(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err == nil && d == 0 {
		err = fmt.Errorf("%q: must be more than zero", s)
	}
	return d, err
}

func isBuiltIn(name string) bool {
	switch name {
	case BuiltInServiceRetries, BuiltInActorRetries, BuiltInActorReminderRetries,
		BuiltInActorNotFoundRetries, BuiltInInitializationRetries:
		return true
	}
	return false
}

// builtInRetries are Dapr's built-in retry policies (§5.4).
func builtInRetries() map[string]*retrySpec {
	sidecar := matcher{grpc: codeSet{{int(codes.Unavailable), int(codes.Unavailable)},
		{int(codes.Unauthenticated), int(codes.Unauthenticated)}}, strict: true}
	return map[string]*retrySpec{
		BuiltInServiceRetries: {name: BuiltInServiceRetries, duration: time.Second, maxInterval: defaultMaxInterval,
			maxRetries: 3, match: sidecar},
		BuiltInActorRetries: {name: BuiltInActorRetries, duration: time.Second, maxInterval: defaultMaxInterval,
			maxRetries: 3, match: sidecar},
		// Dapr bounds it by 15 minutes of elapsed time; with a 60s cap that
		// is about 20 retries.
		BuiltInActorReminderRetries: {name: BuiltInActorReminderRetries, exponential: true,
			maxInterval: defaultMaxInterval, maxRetries: 20},
		BuiltInActorNotFoundRetries: {name: BuiltInActorNotFoundRetries, duration: time.Second,
			maxInterval: defaultMaxInterval, maxRetries: 5},
		BuiltInInitializationRetries: {name: BuiltInInitializationRetries, exponential: true,
			maxInterval: time.Second, maxRetries: 3},
	}
}
