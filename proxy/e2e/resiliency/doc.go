// Package resiliencye2e tests resiliency policies, tracing and the admin
// endpoint end to end: real `outrigger sidecar` processes (built once by
// TestMain into a temporary directory, with the pubsub.sqlite plugin beside
// them) in front of small HTTP test apps served by the test process.
//
// A test writes a Resiliency (and, for tracing, a Configuration) manifest
// into a temporary resources path, starts a calling sidecar and one or more
// target sidecars that share a private gossip port and OUTRIGGER_HOME, then
// drives invocations through the caller's HTTP API and checks what the apps
// saw (request counts), what the caller answered (status, Dapr error, time),
// the admin pages (/breakers, /clusters; the admin port is read from the
// host registry under OUTRIGGER_HOME/run) and /metrics. Tracing tests run a
// Zipkin-compatible collector (proxy/telemetry/telemetrytest) and check that
// spans from both sidecars share one trace id.
package resiliencye2e
