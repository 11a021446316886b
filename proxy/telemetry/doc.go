// Package telemetry is the sidecar's tracing and metrics: an OpenTelemetry
// tracer provider built from Configuration spec.tracing, W3C trace-context
// propagation (traceparent/tracestate on HTTP, grpc-trace-bin or traceparent
// on gRPC), and Prometheus metrics under Dapr's names built from
// spec.metrics on a registry the caller owns.
//
// Data flow. NewTracing turns spec.tracing into a *Tracing: a sampler
// (ParentBased(TraceIDRatio(samplingRate))) and one batch span processor per
// exporter (Zipkin, stdout, OTLP gRPC/HTTP). The pipeline's tracing filter
// (proxy/filters) calls StartFromHeader / StartFromIncomingGRPC for every API
// call: the incoming trace context becomes the parent, the new span goes into
// the request context, and the request's own trace headers are rewritten to
// the new span so whatever the router forwards (invocation to another
// sidecar, to the app) continues the same trace. Building blocks open child
// spans with Start and put the context on outgoing calls with InjectHTTP,
// InjectGRPC or Traceparent (CloudEvents). Shutdown flushes the exporters.
// With tracing off every method is a cheap no-op and nothing is rewritten.
//
// NewMetrics registers Dapr's metrics (dapr_http_server_request_count,
// dapr_grpc_io_server_completed_rpcs, dapr_runtime_service_invocation_…,
// dapr_component_…, dapr_resiliency_…) and Outrigger's own (outrigger_…)
// on the prometheus.Registerer it is given. The pipeline's metrics filter
// records API calls; other parts call the Record… methods. A nil or disabled
// *Metrics ignores every call, so callers never check.
package telemetry
