package resiliency

import (
	"strings"
	"time"
)

// Target names what a Policy protects, for logs, metrics and /breakers.
type Target struct {
	// Kind is "app", "component" or "actor".
	Kind string
	// Name is the app id, component name or actor type.
	Name string
	// Direction is "outbound" (sidecar → app or component) or "inbound"
	// (sidecar → app, delivering a component's message or event).
	Direction string
	// Category is a component's category as Dapr names it in default policy
	// names ("Statestore", "Pubsub", …); "" for apps and actors.
	Category string
	// Resiliency is the metadata.name of the manifest that defined the
	// target, or of the default policy in use; "" for built-in retries.
	Resiliency string
	// Namespace is that manifest's metadata.namespace.
	Namespace string
}

// String is the target as it is written under spec.targets:
// "apps.<id>", "components.<name>.outbound|inbound" or "actors.<type>".
func (t Target) String() string {
	switch t.Kind {
	case KindApp:
		return "apps." + t.Name
	case KindComponent:
		return "components." + t.Name + "." + t.Direction
	case KindActor:
		return "actors." + t.Name
	}
	return t.Kind + "." + t.Name
}

// MetricLabel is the target label Dapr puts on dapr_resiliency_* metrics:
// "app_<id>", "actor_<type>", "<category>_<name>" (category lower-case).
func (t Target) MetricLabel() string {
	switch t.Kind {
	case KindApp:
		return "app_" + t.Name
	case KindActor:
		return "actor_" + t.Name
	}
	return strings.ToLower(t.Category) + "_" + t.Name
}

// Target kinds.
const (
	KindApp       = "app"
	KindComponent = "component"
	KindActor     = "actor"
)

// PolicyKind is one of the three policies a target may have. The values are
// Dapr's "policy" metric label.
type PolicyKind string

// Policy kinds.
const (
	PolicyTimeout        PolicyKind = "timeout"
	PolicyRetry          PolicyKind = "retry"
	PolicyCircuitBreaker PolicyKind = "circuitbreaker"
)

// Observer receives the counters a metrics exporter needs. Implementations
// must be fast and safe for concurrent use: they are called on the request
// path (state changes under the breaker's lock).
type Observer interface {
	// Executed is called once per Execute for each policy the target has
	// (Dapr's dapr_resiliency_count); status is the breaker state before the
	// call for PolicyCircuitBreaker, "" otherwise.
	Executed(t Target, kind PolicyKind, status string)
	// Activated is called when a timeout cuts an attempt, before each retry
	// and when a breaker changes state (Dapr's
	// dapr_resiliency_activations_total); status is the new breaker state
	// for PolicyCircuitBreaker, "" otherwise.
	Activated(t Target, kind PolicyKind, status string)
	// BudgetExhausted is called when a retry was wanted but the target's
	// retry budget had no token left, so the last error was returned.
	BudgetExhausted(t Target)
	// Ejected is called when an app instance is taken out of load balancing
	// for d.
	Ejected(appID, instance string, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) Executed(Target, PolicyKind, string)   {}
func (nopObserver) Activated(Target, PolicyKind, string)  {}
func (nopObserver) BudgetExhausted(Target)                {}
func (nopObserver) Ejected(string, string, time.Duration) {}

// Breaker states as BreakerInfo.State and Observer statuses spell them.
const (
	StateClosed   = "closed"
	StateHalfOpen = "half-open"
	StateOpen     = "open"
)

// BreakerInfo is one circuit breaker as /breakers shows it.
type BreakerInfo struct {
	// Target is the protected target ("apps.b", "actors.T", …).
	Target string
	// Key is the actor id for breakers scoped by id, else "".
	Key string
	// Policy is the circuit breaker policy's name.
	Policy string
	// State is StateClosed, StateHalfOpen or StateOpen.
	State string
	// Counts are the breaker's counters in its current generation (reset on
	// every state change and, when closed, every interval).
	Counts Counts
	// LastTrip is when the breaker last opened; zero if it never did.
	LastTrip time.Time
}

// Counts are a breaker's request counters.
type Counts struct {
	Requests             uint32
	TotalSuccesses       uint32
	TotalFailures        uint32
	ConsecutiveSuccesses uint32
	ConsecutiveFailures  uint32
}
