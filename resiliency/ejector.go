package resiliency

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Ejector is outlier ejection for app instances (an Outrigger extension, in
// the spirit of Envoy's outlier detection). The load balancer asks Healthy
// which instances to pick from and reports every call's result with
// Report. An instance with consecutiveFailures failed calls in a row is
// ejected for baseEjectionTime × the number of times it has been ejected
// (capped at maxEjectionTime; the multiplier decays by one for every
// baseEjectionTime the instance stays in); never more than
// maxEjectionPercent % of an app's instances are ejected at once (rounded
// down, so a single instance is never ejected).
//
// Apps without an outlierDetection policy are not tracked: Healthy returns
// the instances it was given and Report does nothing. State survives hot
// reloads (Build with Previous). An Ejector is safe for concurrent use.
type Ejector struct {
	spec  func(appID string) *outlierSpec
	state *ejectState
	clk   clock
	obs   Observer
}

type ejectState struct {
	mu   sync.Mutex
	apps map[string]*appHosts
}

type appHosts struct {
	known int // instances in the last Healthy call
	hosts map[string]*hostState
}

type hostState struct {
	consecutive int
	times       int       // ejections so far, decayed
	until       time.Time // ejected until; zero = never ejected
}

func newEjectState() *ejectState { return &ejectState{apps: map[string]*appHosts{}} }

// Healthy returns the instances of appID that are not ejected, in the
// given order. It returns instances itself when none is ejected, and all of
// them when every one is (better to try a bad instance than none).
func (e *Ejector) Healthy(appID string, instances []string) []string {
	if e == nil {
		return instances
	}
	spec := e.spec(appID)
	if spec == nil {
		return instances
	}
	now := e.clk.Now()
	e.state.mu.Lock()
	defer e.state.mu.Unlock()
	app := e.state.apps[appID]
	if app == nil {
		if len(instances) == 0 {
			return instances
		}
		app = &appHosts{hosts: map[string]*hostState{}}
		e.state.apps[appID] = app
	}
	app.known = len(instances)
	var ejected []string
	for _, in := range instances {
		if h := app.hosts[in]; h != nil && h.until.After(now) {
			ejected = append(ejected, in)
		}
	}
	if len(ejected) == 0 {
		return instances
	}
	// The instance list may have shrunk since they were ejected: let the
	// ones whose ejection ends soonest back in until the bound holds.
	if limit := maxEjected(spec, len(instances)); len(ejected) > limit {
		slices.SortFunc(ejected, func(a, b string) int { return app.hosts[b].until.Compare(app.hosts[a].until) })
		ejected = ejected[:limit]
	}
	if len(ejected) == 0 || len(ejected) >= len(instances) {
		return instances
	}
	out := make([]string, 0, len(instances)-len(ejected))
	for _, in := range instances {
		if !slices.Contains(ejected, in) {
			out = append(out, in)
		}
	}
	return out
}

// Report records the result of a call to instance of appID: ok is false
// when the call failed in a way that is the instance's fault (connection
// refused, timeout, 5xx), true otherwise.
func (e *Ejector) Report(appID, instance string, ok bool) {
	if e == nil {
		return
	}
	spec := e.spec(appID)
	if spec == nil {
		return
	}
	now := e.clk.Now()
	var ejectedFor time.Duration
	e.state.mu.Lock()
	app := e.state.apps[appID]
	if app == nil {
		if ok {
			e.state.mu.Unlock()
			return
		}
		app = &appHosts{hosts: map[string]*hostState{}}
		e.state.apps[appID] = app
	}
	h := app.hosts[instance]
	switch {
	case ok:
		if h != nil {
			h.consecutive = 0
			if !h.until.After(now) && decayed(h, spec, now) == 0 {
				delete(app.hosts, instance) // nothing left to remember
			}
		}
	case h != nil && h.until.After(now):
		// a call that started before the ejection; already out
	default:
		if h == nil {
			h = &hostState{}
			app.hosts[instance] = h
		}
		h.consecutive++
		if h.consecutive >= spec.consecutiveFailures && e.canEject(app, spec, now) {
			h.times = decayed(h, spec, now) + 1
			ejectedFor = time.Duration(h.times) * spec.baseEjection
			if ejectedFor > spec.maxEjection || ejectedFor <= 0 {
				ejectedFor = spec.maxEjection
			}
			h.until = now.Add(ejectedFor)
			h.consecutive = 0
		}
	}
	e.state.mu.Unlock()
	if ejectedFor > 0 {
		e.obs.Ejected(appID, instance, ejectedFor)
	}
}

// canEject reports whether one more instance of app may be ejected.
func (e *Ejector) canEject(app *appHosts, spec *outlierSpec, now time.Time) bool {
	total := app.known
	if total == 0 {
		total = len(app.hosts)
	}
	n := 0
	for _, h := range app.hosts {
		if h.until.After(now) {
			n++
		}
	}
	return n+1 <= maxEjected(spec, total)
}

func maxEjected(spec *outlierSpec, instances int) int {
	return int(math.Floor(spec.maxPercent / 100 * float64(instances)))
}

// decayed is the ejection multiplier after the time spent back in.
func decayed(h *hostState, spec *outlierSpec, now time.Time) int {
	if h.times == 0 || h.until.IsZero() {
		return h.times
	}
	back := now.Sub(h.until)
	if back <= 0 {
		return h.times
	}
	return max(0, h.times-int(back/spec.baseEjection))
}

// Ejection is one tracked app instance, for /clusters.
type Ejection struct {
	AppID, Instance     string
	ConsecutiveFailures int
	// Ejected is true while the instance is out of load balancing, until
	// Until.
	Ejected bool
	Until   time.Time
	// Times is the current ejection multiplier.
	Times int
}

// Ejections lists the instances with failures or ejections on record,
// sorted by app and instance.
func (e *Ejector) Ejections() []Ejection {
	if e == nil {
		return nil
	}
	now := e.clk.Now()
	e.state.mu.Lock()
	defer e.state.mu.Unlock()
	var out []Ejection
	for appID, app := range e.state.apps {
		for in, h := range app.hosts {
			out = append(out, Ejection{AppID: appID, Instance: in, ConsecutiveFailures: h.consecutive,
				Ejected: h.until.After(now), Until: h.until, Times: h.times})
		}
	}
	slices.SortFunc(out, func(a, b Ejection) int {
		if a.AppID != b.AppID {
			if a.AppID < b.AppID {
				return -1
			}
			return 1
		}
		if a.Instance < b.Instance {
			return -1
		}
		if a.Instance > b.Instance {
			return 1
		}
		return 0
	})
	return out
}
