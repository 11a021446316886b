// Package telemetrytest is a Zipkin-compatible collector for tests: an HTTP
// server accepting POST /api/v2/spans (Zipkin v2 JSON) that keeps the spans
// it receives, so tests can check what a sidecar exported.
//
// Spans flow exporter → POST /api/v2/spans → Collector.Spans / WaitFor.
package telemetrytest
