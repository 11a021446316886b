package resources

import (
	"fmt"
	"strings"
	"time"
)

// DefaultInitTimeout is a Component's spec.initTimeout when the YAML sets none.
const DefaultInitTimeout = 5 * time.Second

// Set is everything Load found in the resources directories, in directory,
// file name and document order.
type Set struct {
	Components    []Component
	Subscriptions []Subscription
	Resiliencies  []Resiliency
	HTTPEndpoints []HTTPEndpoint
	// Warnings are the things Load ignored (unknown fields, unknown kinds,
	// disallowed envRef, …); each is also logged at WARN.
	Warnings []Warning
}

// Warning is a non-fatal problem found in a resource file.
type Warning struct {
	File    string
	Line    int // 0 when unknown
	Message string
}

func (w Warning) String() string {
	if w.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Message)
	}
	return fmt.Sprintf("%s: %s", w.File, w.Message)
}

// Component is a Dapr Component manifest (dapr.io/v1alpha1).
type Component struct {
	Name      string
	Namespace string
	// Type is "<category>.<impl>", e.g. "state.redis".
	Type         string
	Version      string
	InitTimeout  time.Duration // DefaultInitTimeout when not set
	IgnoreErrors bool
	Metadata     []MetadataItem
	// AuthSecretStore is auth.secretStore: the store used to resolve
	// secretKeyRef items.
	AuthSecretStore string
	Scopes          []string
	// File and Line locate the manifest, for messages.
	File string
	Line int
}

// MetadataItem is one spec.metadata entry. Value holds the resolved value:
// templates expanded and envRef read. Items with a SecretKeyRef have an empty
// Value until the secrets building block fills it in.
type MetadataItem struct {
	Name         string
	Value        string
	SecretKeyRef *SecretKeyRef
	EnvRef       string
}

// SecretKeyRef points a metadata item at a secret. Key defaults to Name (as in
// Dapr) when resolving.
type SecretKeyRef struct {
	Name string
	Key  string
}

// Category is the part of Type before the first dot: "state", "pubsub",
// "bindings", "secretstores", "configuration", "lock", "crypto",
// "middleware", "nameresolution", "workflowbackend".
func (c Component) Category() string {
	cat, _, _ := strings.Cut(c.Type, ".")
	return cat
}

// Impl is the part of Type after the first dot ("redis" for "state.redis").
func (c Component) Impl() string {
	_, impl, _ := strings.Cut(c.Type, ".")
	return impl
}

// Properties returns the metadata as the name → value map a component's Init
// receives.
func (c Component) Properties() map[string]string {
	props := make(map[string]string, len(c.Metadata))
	for _, m := range c.Metadata {
		props[m.Name] = m.Value
	}
	return props
}

// Location is "file:line" of the manifest.
func (c Component) Location() string { return location(c.File, c.Line) }

func location(file string, line int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d", file, line)
	}
	return file
}

// Subscription is a declarative Subscription manifest. A v1alpha1 spec.route
// is kept in Route and also copied into Routes.Default, so consumers can read
// Routes for both versions.
type Subscription struct {
	Name       string
	Namespace  string
	APIVersion string // "dapr.io/v1alpha1" or "dapr.io/v2alpha1"
	PubsubName string
	Topic      string
	Route      string // v1alpha1 spec.route
	Routes     Routes
	// DeadLetterTopic is spec.deadLetterTopic ("" = none).
	DeadLetterTopic string
	Metadata        map[string]string
	BulkSubscribe   BulkSubscribe
	Scopes          []string
	File            string
	Line            int
}

// Routes are v2alpha1 routing rules: the first rule whose CEL Match is true
// wins, else Default.
type Routes struct {
	Rules   []Rule
	Default string
}

// Rule is one routing rule.
type Rule struct {
	Match string
	Path  string
}

// BulkSubscribe is spec.bulkSubscribe.
type BulkSubscribe struct {
	Enabled            bool
	MaxMessagesCount   int32
	MaxAwaitDurationMs int32
}

// Resiliency is a Resiliency manifest. Durations and trip expressions are
// kept as written; the resiliency package gives them meaning.
type Resiliency struct {
	Name      string
	Namespace string
	Policies  Policies
	Targets   Targets
	Scopes    []string
	File      string
	Line      int
}

// Policies are the named policies of a Resiliency spec.
type Policies struct {
	Timeouts        map[string]string
	Retries         map[string]Retry
	CircuitBreakers map[string]CircuitBreaker
	// OutlierDetections is an Outrigger extension (ignored by Dapr):
	// spec.policies.outlierDetections.
	OutlierDetections map[string]OutlierDetection
}

// Retry is a named retry policy.
type Retry struct {
	Policy      string // "constant" (default) or "exponential"
	Duration    string
	MaxInterval string
	MaxRetries  *int // nil = not set (Dapr default -1, retry forever)
	// Matching and Budget are Outrigger extensions (ignored by Dapr); nil
	// when the manifest does not set them.
	Matching *RetryMatching
	Budget   *RetryBudget
}

// RetryMatching is a retry policy's matching (Dapr 1.15 syntax): the status
// codes that are retried, as written ("429,500-599"; a bare number is its text).
type RetryMatching struct {
	HTTPStatusCodes string
	GRPCStatusCodes string
}

// RetryBudget is a retry policy's budget (an Outrigger extension); nil
// fields are not set.
type RetryBudget struct {
	Percent             *float64
	MinRetriesPerSecond *float64
}

// OutlierDetection is a named outlier ejection policy (an Outrigger
// extension); durations are kept as written, nil fields are not set.
type OutlierDetection struct {
	ConsecutiveFailures *int
	BaseEjectionTime    string
	MaxEjectionTime     string
	MaxEjectionPercent  *float64
}

// CircuitBreaker is a named circuit breaker policy.
type CircuitBreaker struct {
	MaxRequests int
	Interval    string
	Timeout     string
	Trip        string // CEL expression
}

// Targets map apps, actor types and components to policy names.
type Targets struct {
	Apps       map[string]EndpointPolicyNames
	Actors     map[string]ActorPolicyNames
	Components map[string]ComponentPolicyNames
}

// PolicyNames name the timeout, retry and circuit breaker of a target.
type PolicyNames struct {
	Timeout        string
	Retry          string
	CircuitBreaker string
}

// EndpointPolicyNames are the policies of an app target.
type EndpointPolicyNames struct {
	PolicyNames
	CircuitBreakerCacheSize int
	// OutlierDetection names an outlier ejection policy (an Outrigger extension).
	OutlierDetection string
}

// ActorPolicyNames are the policies of an actor type target.
type ActorPolicyNames struct {
	PolicyNames
	CircuitBreakerScope     string // "id", "type" or "both"
	CircuitBreakerCacheSize int
}

// ComponentPolicyNames are the policies of a component target.
type ComponentPolicyNames struct {
	Inbound  PolicyNames
	Outbound PolicyNames
}

// HTTPEndpoint is an HTTPEndpoint manifest: an external service reachable
// through /v1.0/invoke/<name>/method/….
type HTTPEndpoint struct {
	Name            string
	Namespace       string
	BaseURL         string
	Headers         []MetadataItem
	ClientTLS       *ClientTLS
	AuthSecretStore string
	Scopes          []string
	File            string
	Line            int
}

// ClientTLS is an HTTPEndpoint's spec.clientTLS; nil documents are unset.
type ClientTLS struct {
	RootCA      *TLSDocument
	Certificate *TLSDocument
	PrivateKey  *TLSDocument
}

// TLSDocument is a PEM value given inline or by secret reference.
type TLSDocument struct {
	Value        string
	SecretKeyRef *SecretKeyRef
}
