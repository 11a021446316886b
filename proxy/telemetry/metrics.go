package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/outrigger/outrigger/proxy/resources"
)

// DefaultLatencyBuckets are daprd's latency histogram buckets, in milliseconds.
func DefaultLatencyBuckets() []float64 {
	return []float64{1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200, 250, 300,
		400, 500, 650, 800, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000}
}

// sizeBuckets are daprd's byte-size histogram buckets.
func sizeBuckets() []float64 {
	return []float64{1 << 10, 2 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20,
		64 << 20, 256 << 20, 1 << 30, 4 << 30}
}

// BreakerState is a circuit breaker's state as outrigger_breaker_state reports it.
type BreakerState int

// Breaker states: the gauge's values.
const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

// Resiliency policy kinds and flow directions, daprd's label values.
const (
	PolicyTimeout        = "timeout"
	PolicyRetry          = "retry"
	PolicyCircuitBreaker = "circuitbreaker"

	FlowOutbound = "outbound"
	FlowInbound  = "inbound"
)

// ResiliencyAppTarget, ResiliencyComponentTarget and ResiliencyActorTarget
// build daprd's "target" label values for the resiliency metrics.
func ResiliencyAppTarget(appID string) string { return "app_" + appID }

// ResiliencyComponentTarget is "<componentType>_<name>", e.g. "statestore_mystore".
func ResiliencyComponentTarget(name, componentType string) string { return componentType + "_" + name }

// ResiliencyActorTarget is "actor_<type>".
func ResiliencyActorTarget(actorType string) string { return "actor_" + actorType }

// Metrics records the sidecar's Prometheus metrics. A nil *Metrics, or one
// built with metrics disabled, ignores every call.
type Metrics struct {
	enabled bool
	paths   *pathLabeler
	status  [600]string // "100".."599", so recording a status does not allocate

	httpCount     *prometheus.CounterVec
	httpLatency   *prometheus.HistogramVec
	httpResponses *prometheus.CounterVec // legacy (increasedCardinality) only, as in daprd
	httpReqBytes  prometheus.Observer
	httpRespBytes prometheus.Observer

	grpcCompleted *prometheus.CounterVec
	grpcLatency   *prometheus.HistogramVec

	invReqSent    *prometheus.CounterVec
	invReqRecv    *prometheus.CounterVec
	invResSent    *prometheus.CounterVec
	invResRecv    *prometheus.CounterVec
	invResLatency *prometheus.HistogramVec

	pubIngress        *prometheus.CounterVec
	pubIngressLatency *prometheus.HistogramVec
	pubEgress         *prometheus.CounterVec
	pubEgressLatency  *prometheus.HistogramVec
	stateCount        *prometheus.CounterVec
	stateLatency      *prometheus.HistogramVec

	resLoaded      *prometheus.CounterVec
	resCount       *prometheus.CounterVec
	resActivations *prometheus.CounterVec

	breakerState    *prometheus.GaugeVec
	retries         *prometheus.CounterVec
	budgetExhausted *prometheus.CounterVec
	ejected         *prometheus.GaugeVec
	pluginRestarts  *prometheus.CounterVec
	gossipMembers   prometheus.Gauge
}

// NewMetrics registers the metrics on reg (the sidecar's own registry, never
// prometheus' global one) according to Configuration spec.metrics (zero
// value: daprd's defaults). With spec.metrics.enabled false it registers
// nothing and returns a Metrics that ignores every call. appID and
// namespace become the app_id and namespace labels daprd puts on its
// metrics. A bad path pattern in http.pathMatching, a non-increasing
// latencyDistributionBuckets, or a metric already registered on reg is an
// error.
func NewMetrics(reg prometheus.Registerer, spec resources.MetricSpec, appID, namespace string, log *slog.Logger) (*Metrics, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if spec.Enabled != nil && !*spec.Enabled {
		return &Metrics{}, nil
	}
	if reg == nil {
		return nil, errors.New("metrics: no registry given")
	}
	buckets := DefaultLatencyBuckets()
	if spec.LatencyDistributionBuckets != nil && len(*spec.LatencyDistributionBuckets) > 0 {
		buckets = buckets[:0]
		for i, b := range *spec.LatencyDistributionBuckets {
			if i > 0 && float64(b) <= buckets[i-1] {
				return nil, fmt.Errorf("spec.metrics.latencyDistributionBuckets: %v is not strictly increasing", *spec.LatencyDistributionBuckets)
			}
			buckets = append(buckets, float64(b))
		}
	}
	legacy, excludeVerbs := true, false // daprd 1.14's defaults
	var patterns []string
	if h := spec.HTTP; h != nil {
		if h.IncreasedCardinality != nil {
			legacy = *h.IncreasedCardinality
		}
		if h.ExcludeVerbs != nil {
			excludeVerbs = *h.ExcludeVerbs
		}
		patterns = h.PathMatching
	}
	paths, err := newPathLabeler(patterns, legacy, excludeVerbs)
	if err != nil {
		return nil, err
	}
	if len(spec.Rules) > 0 {
		log.Warn("spec.metrics.rules is not supported yet; label values are recorded unchanged")
	}
	if spec.RecordErrorCodes {
		log.Warn("spec.metrics.recordErrorCodes is not supported yet")
	}

	app := prometheus.Labels{"app_id": appID}
	appNS := prometheus.Labels{"app_id": appID, "namespace": namespace}
	counter := func(name, help string, cl prometheus.Labels, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: cl}, labels)
	}
	histogram := func(name, help string, cl prometheus.Labels, b []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: cl, Buckets: b}, labels)
	}
	m := &Metrics{
		enabled: true,
		paths:   paths,

		httpCount: counter("dapr_http_server_request_count", "Count of HTTP requests processed by the server.",
			app, "method", "path", "status"),
		httpLatency: histogram("dapr_http_server_latency", "HTTP request end-to-end latency in server, in milliseconds.",
			app, buckets, "method", "path", "status"),
		grpcCompleted: counter("dapr_grpc_io_server_completed_rpcs", "Count of RPCs by method and status.",
			app, "grpc_server_method", "grpc_server_status"),
		grpcLatency: histogram("dapr_grpc_io_server_server_latency",
			"Time between first byte of request received to last byte of response sent, or terminal error, in milliseconds.",
			app, buckets, "grpc_server_method", "grpc_server_status"),

		invReqSent: counter("dapr_runtime_service_invocation_req_sent_total", "The number of requests sent via service invocation.",
			app, "dst_app_id", "type"),
		invReqRecv: counter("dapr_runtime_service_invocation_req_recv_total", "The number of requests received via service invocation.",
			app, "src_app_id"),
		invResSent: counter("dapr_runtime_service_invocation_res_sent_total", "The number of responses sent via service invocation.",
			app, "dst_app_id", "status"),
		invResRecv: counter("dapr_runtime_service_invocation_res_recv_total", "The number of responses received via service invocation.",
			app, "src_app_id", "status", "type"),
		invResLatency: histogram("dapr_runtime_service_invocation_res_recv_latency_ms", "The latency of service invocation response, in milliseconds.",
			app, buckets, "src_app_id", "status"),

		pubIngress: counter("dapr_component_pubsub_ingress_count", "The number of incoming messages arriving from the pub/sub component.",
			appNS, "component", "process_status", "topic", "status"),
		pubIngressLatency: histogram("dapr_component_pubsub_ingress_latencies", "The consuming app event processing latency, in milliseconds.",
			appNS, buckets, "component", "process_status", "topic", "status"),
		pubEgress: counter("dapr_component_pubsub_egress_count", "The number of outgoing messages published to the pub/sub component.",
			appNS, "component", "success", "topic"),
		pubEgressLatency: histogram("dapr_component_pubsub_egress_latencies", "The latency of the response from the pub/sub component, in milliseconds.",
			appNS, buckets, "component", "success", "topic"),
		stateCount: counter("dapr_component_state_count", "The number of operations performed on the state component.",
			appNS, "component", "operation", "success"),
		stateLatency: histogram("dapr_component_state_latencies", "The latency of the response from the state component, in milliseconds.",
			appNS, buckets, "component", "operation", "success"),

		resLoaded: counter("dapr_resiliency_loaded", "Number of resiliency policies loaded.",
			appNS, "name"),
		resCount: counter("dapr_resiliency_count", "Number of times a resiliency policy has been applied to a building block.",
			appNS, "name", "policy", "flow_direction", "target", "status"),
		resActivations: counter("dapr_resiliency_activations_total",
			"Number of times a resiliency policy has been activated in a building block after a failure or after a state change.",
			appNS, "name", "policy", "flow_direction", "target", "status"),

		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "outrigger_breaker_state",
			Help: "Circuit breaker state per target: 0 closed, 1 half-open, 2 open."}, []string{"target"}),
		retries: counter("outrigger_retries_total", "Retries made per target (not counting first attempts).", nil, "target"),
		budgetExhausted: counter("outrigger_retry_budget_exhausted_total",
			"Retries not made because the target's retry budget was used up.", nil, "target"),
		ejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "outrigger_ejected_instances",
			Help: "Instances of an app currently ejected from load balancing by outlier detection."}, []string{"app_id"}),
		pluginRestarts: counter("outrigger_plugin_restarts_total", "Times a component plugin process was restarted.", nil, "plugin"),
		gossipMembers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "outrigger_gossip_members",
			Help: "Sidecars currently alive in the gossip cluster, this one included."}),
	}
	reqBytes := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dapr_http_server_request_bytes",
		Help: "HTTP request body size if set as ContentLength (uncompressed) in server.", ConstLabels: app, Buckets: sizeBuckets()})
	respBytes := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dapr_http_server_response_bytes",
		Help: "HTTP response body size (uncompressed) in server.", ConstLabels: app, Buckets: sizeBuckets()})
	m.httpReqBytes, m.httpRespBytes = reqBytes, respBytes
	cs := []prometheus.Collector{m.httpCount, m.httpLatency, reqBytes, respBytes, m.grpcCompleted, m.grpcLatency,
		m.invReqSent, m.invReqRecv, m.invResSent, m.invResRecv, m.invResLatency,
		m.pubIngress, m.pubIngressLatency, m.pubEgress, m.pubEgressLatency, m.stateCount, m.stateLatency,
		m.resLoaded, m.resCount, m.resActivations,
		m.breakerState, m.retries, m.budgetExhausted, m.ejected, m.pluginRestarts, m.gossipMembers}
	if legacy {
		m.httpResponses = counter("dapr_http_server_response_count", "The number of HTTP responses", app, "method", "path", "status")
		cs = append(cs, m.httpResponses)
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	for i := range m.status {
		if i >= 100 {
			m.status[i] = strconv.Itoa(i)
		}
	}
	return m, nil
}

// Enabled reports whether calls are recorded.
func (m *Metrics) Enabled() bool { return m != nil && m.enabled }

func (m *Metrics) statusLabel(code int) string {
	if code >= 100 && code < len(m.status) {
		return m.status[code]
	}
	return strconv.Itoa(code)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// HTTPPathLabel is the path label a request path is recorded under, after
// spec.metrics.http (increasedCardinality, pathMatching).
func (m *Metrics) HTTPPathLabel(path string) string {
	if !m.Enabled() {
		return ""
	}
	return m.paths.path(path)
}

// RecordHTTPServer records one API call served over HTTP:
// dapr_http_server_request_count, _latency, _request_bytes (from the
// request's Content-Length, 0 when unknown), _response_bytes.
func (m *Metrics) RecordHTTPServer(method, path string, status int, reqBytes, respBytes int64, elapsed time.Duration) {
	if !m.Enabled() {
		return
	}
	method, path, st := m.paths.method(method), m.paths.path(path), m.statusLabel(status)
	m.httpCount.WithLabelValues(method, path, st).Inc()
	m.httpLatency.WithLabelValues(method, path, st).Observe(ms(elapsed))
	if m.httpResponses != nil {
		m.httpResponses.WithLabelValues(method, path, st).Inc()
	}
	if reqBytes < 0 {
		reqBytes = 0
	}
	m.httpReqBytes.Observe(float64(reqBytes))
	m.httpRespBytes.Observe(float64(respBytes))
}

// RecordGRPCServer records one API call served over gRPC:
// dapr_grpc_io_server_completed_rpcs and _server_latency.
func (m *Metrics) RecordGRPCServer(fullMethod string, code codes.Code, elapsed time.Duration) {
	if !m.Enabled() {
		return
	}
	c := code.String()
	m.grpcCompleted.WithLabelValues(fullMethod, c).Inc()
	m.grpcLatency.WithLabelValues(fullMethod, c).Observe(ms(elapsed))
}

func invocationType(streaming bool) string {
	if streaming {
		return "streaming"
	}
	return "unary"
}

// RecordInvocationRequestSent counts a service invocation sent to dstAppID
// (dapr_runtime_service_invocation_req_sent_total).
func (m *Metrics) RecordInvocationRequestSent(dstAppID string, streaming bool) {
	if !m.Enabled() {
		return
	}
	m.invReqSent.WithLabelValues(dstAppID, invocationType(streaming)).Inc()
}

// RecordInvocationResponseReceived counts the answer to an invocation of
// appID and its latency (dapr_runtime_service_invocation_res_recv_total and
// _res_recv_latency_ms). status is the app's HTTP status, or the gRPC code
// for gRPC apps. As in daprd, the label holding appID is named src_app_id.
func (m *Metrics) RecordInvocationResponseReceived(appID string, status int, streaming bool, elapsed time.Duration) {
	if !m.Enabled() {
		return
	}
	st := m.statusLabel(status)
	m.invResRecv.WithLabelValues(appID, st, invocationType(streaming)).Inc()
	m.invResLatency.WithLabelValues(appID, st).Observe(ms(elapsed))
}

// RecordInvocationRequestReceived counts an invocation received from
// another sidecar for the local app (dapr_runtime_service_invocation_req_recv_total).
func (m *Metrics) RecordInvocationRequestReceived(srcAppID string) {
	if !m.Enabled() {
		return
	}
	m.invReqRecv.WithLabelValues(srcAppID).Inc()
}

// RecordInvocationResponseSent counts the local app's answer sent back to
// the calling app (dapr_runtime_service_invocation_res_sent_total).
func (m *Metrics) RecordInvocationResponseSent(callerAppID string, status int) {
	if !m.Enabled() {
		return
	}
	m.invResSent.WithLabelValues(callerAppID, m.statusLabel(status)).Inc()
}

// RecordPubsubEgress counts a publish to a pub/sub component
// (dapr_component_pubsub_egress_count and _latencies).
func (m *Metrics) RecordPubsubEgress(component, topic string, success bool, elapsed time.Duration) {
	if !m.Enabled() {
		return
	}
	s := boolLabel(success)
	m.pubEgress.WithLabelValues(component, s, topic).Inc()
	m.pubEgressLatency.WithLabelValues(component, s, topic).Observe(ms(elapsed))
}

// Pub/sub delivery outcomes, daprd's process_status values.
const (
	PubsubSuccess = "success"
	PubsubRetry   = "retry"
	PubsubDrop    = "drop"
)

// RecordPubsubIngress counts a message delivered to the app
// (dapr_component_pubsub_ingress_count and _latencies). processStatus is
// PubsubSuccess, PubsubRetry or PubsubDrop; status "" means the same.
func (m *Metrics) RecordPubsubIngress(component, topic, processStatus, status string, elapsed time.Duration) {
	if !m.Enabled() {
		return
	}
	if status == "" {
		status = processStatus
	}
	m.pubIngress.WithLabelValues(component, processStatus, topic, status).Inc()
	m.pubIngressLatency.WithLabelValues(component, processStatus, topic, status).Observe(ms(elapsed))
}

// RecordStateOperation counts a call to a state store
// (dapr_component_state_count and _latencies); operation is daprd's
// ("get", "set", "delete", "bulk_get", "transaction", …).
func (m *Metrics) RecordStateOperation(component, operation string, success bool, elapsed time.Duration) {
	if !m.Enabled() {
		return
	}
	s := boolLabel(success)
	m.stateCount.WithLabelValues(component, operation, s).Inc()
	m.stateLatency.WithLabelValues(component, operation, s).Observe(ms(elapsed))
}

// RecordResiliencyLoaded counts a Resiliency resource loaded (dapr_resiliency_loaded).
func (m *Metrics) RecordResiliencyLoaded(name string) {
	if !m.Enabled() {
		return
	}
	m.resLoaded.WithLabelValues(name).Inc()
}

// RecordResiliencyExecuted counts a policy applied to a call
// (dapr_resiliency_count). policy is PolicyTimeout, PolicyRetry or
// PolicyCircuitBreaker; direction FlowOutbound or FlowInbound; target from
// ResiliencyAppTarget etc.; status is the breaker state for circuit
// breakers ("closed", "half-open", "open"), else "".
func (m *Metrics) RecordResiliencyExecuted(name, policy, direction, target, status string) {
	if !m.Enabled() {
		return
	}
	m.resCount.WithLabelValues(name, policy, direction, target, status).Inc()
}

// RecordResiliencyActivated counts a policy activated by a failure or a
// breaker state change (dapr_resiliency_activations_total); arguments as
// for RecordResiliencyExecuted.
func (m *Metrics) RecordResiliencyActivated(name, policy, direction, target, status string) {
	if !m.Enabled() {
		return
	}
	m.resActivations.WithLabelValues(name, policy, direction, target, status).Inc()
}

// SetBreakerState sets outrigger_breaker_state{target}.
func (m *Metrics) SetBreakerState(target string, s BreakerState) {
	if !m.Enabled() {
		return
	}
	m.breakerState.WithLabelValues(target).Set(float64(s))
}

// AddRetry counts one retry of a call to target (outrigger_retries_total).
func (m *Metrics) AddRetry(target string) {
	if !m.Enabled() {
		return
	}
	m.retries.WithLabelValues(target).Inc()
}

// AddRetryBudgetExhausted counts a retry refused by target's retry budget
// (outrigger_retry_budget_exhausted_total).
func (m *Metrics) AddRetryBudgetExhausted(target string) {
	if !m.Enabled() {
		return
	}
	m.budgetExhausted.WithLabelValues(target).Inc()
}

// SetEjectedInstances sets outrigger_ejected_instances{app_id} for a target app.
func (m *Metrics) SetEjectedInstances(appID string, n int) {
	if !m.Enabled() {
		return
	}
	m.ejected.WithLabelValues(appID).Set(float64(n))
}

// AddPluginRestart counts a restart of a plugin process (outrigger_plugin_restarts_total).
func (m *Metrics) AddPluginRestart(plugin string) {
	if !m.Enabled() {
		return
	}
	m.pluginRestarts.WithLabelValues(plugin).Inc()
}

// SetGossipMembers sets outrigger_gossip_members.
func (m *Metrics) SetGossipMembers(n int) {
	if !m.Enabled() {
		return
	}
	m.gossipMembers.Set(float64(n))
}
