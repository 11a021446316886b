package resources

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Configuration is a Dapr Configuration manifest (the --config file). Field
// names and JSON shapes are Dapr's, so the file is decoded as Dapr decodes
// it; the building blocks give the fields meaning.
type Configuration struct {
	Name      string
	Namespace string
	Spec      ConfigurationSpec
	// Warnings are the fields and documents LoadConfiguration ignored.
	Warnings []Warning
	File     string
	Line     int
}

// ConfigurationSpec is Configuration.spec. Metrics holds spec.metrics, or
// the legacy spec.metric when metrics is absent.
type ConfigurationSpec struct {
	HTTPPipeline    *PipelineSpec       `json:"httpPipeline,omitempty"`
	AppHTTPPipeline *PipelineSpec       `json:"appHttpPipeline,omitempty"`
	Tracing         *TracingSpec        `json:"tracing,omitempty"`
	MTLS            *MTLSSpec           `json:"mtls,omitempty"`
	Metric          *MetricSpec         `json:"metric,omitempty"`
	Metrics         *MetricSpec         `json:"metrics,omitempty"`
	Secrets         *SecretsSpec        `json:"secrets,omitempty"`
	AccessControl   *AccessControlSpec  `json:"accessControl,omitempty"`
	NameResolution  *NameResolutionSpec `json:"nameResolution,omitempty"`
	Features        []FeatureSpec       `json:"features,omitempty"`
	API             *APISpec            `json:"api,omitempty"`
	Components      *ComponentsSpec     `json:"components,omitempty"`
	Logging         *LoggingSpec        `json:"logging,omitempty"`
	Wasm            *WasmSpec           `json:"wasm,omitempty"`
	Workflow        *WorkflowSpec       `json:"workflow,omitempty"`
}

// PipelineSpec is an httpPipeline / appHttpPipeline: middleware in order.
type PipelineSpec struct {
	Handlers []HandlerSpec `json:"handlers,omitempty"`
}

// HandlerSpec names one middleware component.
type HandlerSpec struct {
	Name     string       `json:"name,omitempty"`
	Type     string       `json:"type,omitempty"`
	Version  string       `json:"version,omitempty"`
	Selector SelectorSpec `json:"selector,omitempty"`
}

// SelectorSpec restricts a handler to requests whose fields match.
type SelectorSpec struct {
	Fields []SelectorField `json:"fields,omitempty"`
}

// SelectorField is one selector condition.
type SelectorField struct {
	Field string `json:"field"`
	Value string `json:"value"`
}

// TracingSpec is spec.tracing.
type TracingSpec struct {
	SamplingRate string      `json:"samplingRate,omitempty"`
	Stdout       bool        `json:"stdout,omitempty"`
	Zipkin       *ZipkinSpec `json:"zipkin,omitempty"`
	Otel         *OtelSpec   `json:"otel,omitempty"`
}

// ZipkinSpec is spec.tracing.zipkin.
type ZipkinSpec struct {
	EndpointAddress string `json:"endpointAddress,omitempty"`
}

// OtelSpec is spec.tracing.otel.
type OtelSpec struct {
	Protocol        string `json:"protocol,omitempty"`
	EndpointAddress string `json:"endpointAddress,omitempty"`
	IsSecure        *bool  `json:"isSecure,omitempty"`
}

// MetricSpec is spec.metrics.
type MetricSpec struct {
	Enabled                    *bool         `json:"enabled,omitempty"`
	HTTP                       *MetricHTTP   `json:"http,omitempty"`
	LatencyDistributionBuckets *[]int        `json:"latencyDistributionBuckets,omitempty"`
	Rules                      []MetricsRule `json:"rules,omitempty"`
	RecordErrorCodes           bool          `json:"recordErrorCodes,omitempty"`
}

// MetricHTTP is spec.metrics.http.
type MetricHTTP struct {
	IncreasedCardinality *bool    `json:"increasedCardinality,omitempty"`
	PathMatching         []string `json:"pathMatching,omitempty"`
	ExcludeVerbs         *bool    `json:"excludeVerbs,omitempty"`
}

// MetricsRule rewrites label values of one metric.
type MetricsRule struct {
	Name   string        `json:"name,omitempty"`
	Labels []MetricLabel `json:"labels,omitempty"`
}

// MetricLabel maps a label's values through regular expressions.
type MetricLabel struct {
	Name  string            `json:"name,omitempty"`
	Regex map[string]string `json:"regex,omitempty"`
}

// MTLSSpec is spec.mtls.
type MTLSSpec struct {
	Enabled                 bool            `json:"enabled,omitempty"`
	WorkloadCertTTL         string          `json:"workloadCertTTL,omitempty"`
	AllowedClockSkew        string          `json:"allowedClockSkew,omitempty"`
	SentryAddress           string          `json:"sentryAddress,omitempty"`
	ControlPlaneTrustDomain string          `json:"controlPlaneTrustDomain,omitempty"`
	TokenValidators         []ValidatorSpec `json:"tokenValidators,omitempty"`
}

// ValidatorSpec is a Sentry token validator.
type ValidatorSpec struct {
	Name    string `json:"name"`
	Options any    `json:"options,omitempty"`
}

// SecretsSpec is spec.secrets.
type SecretsSpec struct {
	Scopes []SecretsScope `json:"scopes,omitempty"`
}

// SecretsScope limits which secrets of a store the app may read.
type SecretsScope struct {
	DefaultAccess  string   `json:"defaultAccess,omitempty"`
	StoreName      string   `json:"storeName,omitempty"`
	AllowedSecrets []string `json:"allowedSecrets,omitempty"`
	DeniedSecrets  []string `json:"deniedSecrets,omitempty"`
}

// AccessControlSpec is spec.accessControl (service invocation ACLs).
type AccessControlSpec struct {
	DefaultAction string          `json:"defaultAction,omitempty"`
	TrustDomain   string          `json:"trustDomain,omitempty"`
	AppPolicies   []AppPolicySpec `json:"policies,omitempty"`
}

// AppPolicySpec is the ACL for one calling app.
type AppPolicySpec struct {
	AppID         string         `json:"appId,omitempty"`
	DefaultAction string         `json:"defaultAction,omitempty"`
	TrustDomain   string         `json:"trustDomain,omitempty"`
	Namespace     string         `json:"namespace,omitempty"`
	Operations    []AppOperation `json:"operations,omitempty"`
}

// AppOperation allows or denies one operation path.
type AppOperation struct {
	Name     string   `json:"name,omitempty"`
	HTTPVerb []string `json:"httpVerb,omitempty"`
	Action   string   `json:"action,omitempty"`
}

// NameResolutionSpec is spec.nameResolution.
type NameResolutionSpec struct {
	Component     string `json:"component,omitempty"`
	Version       string `json:"version,omitempty"`
	Configuration any    `json:"configuration,omitempty"`
}

// FeatureSpec turns a preview feature on or off.
type FeatureSpec struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
}

// APISpec is spec.api: the API allow and deny lists.
type APISpec struct {
	Allowed []APIAccessRule `json:"allowed,omitempty"`
	Denied  []APIAccessRule `json:"denied,omitempty"`
}

// APIAccessRule names an API group, version and protocol ("http" or "grpc").
type APIAccessRule struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Protocol string `json:"protocol"`
}

// ComponentsSpec is spec.components.
type ComponentsSpec struct {
	Deny []string `json:"deny,omitempty"`
}

// LoggingSpec is spec.logging.
type LoggingSpec struct {
	APILogging *APILoggingSpec `json:"apiLogging,omitempty"`
}

// APILoggingSpec is spec.logging.apiLogging.
type APILoggingSpec struct {
	Enabled          bool `json:"enabled,omitempty"`
	ObfuscateURLs    bool `json:"obfuscateURLs,omitempty"`
	OmitHealthChecks bool `json:"omitHealthChecks,omitempty"`
}

// WasmSpec is spec.wasm.
type WasmSpec struct {
	StrictSandbox bool `json:"strictSandbox,omitempty"`
}

// WorkflowSpec is spec.workflow.
type WorkflowSpec struct {
	MaxConcurrentWorkflowInvocations int32 `json:"maxConcurrentWorkflowInvocations,omitempty"`
	MaxConcurrentActivityInvocations int32 `json:"maxConcurrentActivityInvocations,omitempty"`
}

type rawConfiguration struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   rawObjectMeta     `json:"metadata"`
	Spec       ConfigurationSpec `json:"spec"`
}

// LoadConfiguration reads the Configuration manifest in the file at path
// (the --config flag). The first document of kind Configuration is used;
// other documents and unknown fields become Warnings.
func LoadConfiguration(path string) (*Configuration, error) {
	if path == "" {
		return nil, errors.New("load configuration: no file given")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load configuration: %w", err)
	}
	var warnings []Warning
	warn := func(line int, format string, args ...any) {
		warnings = append(warnings, Warning{File: path, Line: line, Message: fmt.Sprintf(format, args...)})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var cfg *Configuration
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: invalid YAML: %w", path, err)
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].ShortTag() == "!!null") {
			continue
		}
		root := n.Content[0]
		if root.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: document is not a mapping", location(path, root.Line))
		}
		js, err := toJSON(root)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var hdr rawHeader
		if err := decodeJSON(js, &hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", location(path, root.Line), err)
		}
		if hdr.Kind != "Configuration" || cfg != nil {
			warn(root.Line, "%s %q in the configuration file ignored", hdr.Kind, hdr.Metadata.Name)
			continue
		}
		if hdr.APIVersion != apiV1Alpha1 {
			warn(root.Line, "Configuration has apiVersion %q, want %s", hdr.APIVersion, apiV1Alpha1)
		}
		var raw rawConfiguration
		if err := decodeJSON(js, &raw); err != nil {
			return nil, fmt.Errorf("%s: Configuration %q: %w", location(path, root.Line), hdr.Metadata.Name, err)
		}
		unknownFields(root, reflect.TypeOf(raw), "", func(line int, field string) {
			warn(line, "unknown field %q in Configuration %q ignored", field, hdr.Metadata.Name)
		})
		if raw.Spec.Metrics == nil {
			raw.Spec.Metrics = raw.Spec.Metric
		}
		cfg = &Configuration{
			Name: raw.Metadata.Name, Namespace: raw.Metadata.Namespace, Spec: raw.Spec,
			File: path, Line: root.Line,
		}
	}
	if cfg == nil {
		return nil, fmt.Errorf("%s: no Configuration document (kind: Configuration, apiVersion: %s)", path, apiV1Alpha1)
	}
	cfg.Warnings = warnings
	return cfg, nil
}
