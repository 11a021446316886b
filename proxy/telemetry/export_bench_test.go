package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/zipkin"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkZipkinExport is the cost per span of the OpenTelemetry Zipkin
// exporter (the one spec.tracing.zipkin uses) on spans shaped like the
// sidecar's invocation spans: one batch of 512 (the batch processor's batch)
// encoded and posted to a collector that discards it. Issue 7's tracing cost
// is mostly this figure times the spans a request creates in each sidecar.
func BenchmarkZipkinExport(b *testing.B) {
	var posted atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		posted.Add(n)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	exp, err := zipkin.New(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "orders"))))
	tr := tp.Tracer("dapr-diagnostics")
	const batch = 512
	for range batch {
		_, s := tr.Start(context.Background(), "/v1.0/invoke/billing/method/pay", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.String("dapr.protocol", "http"),
			attribute.String("dapr.api", "POST /v1.0/invoke/billing/method/pay"),
			attribute.String("dapr.status_code", "200"),
			attribute.String("http.request.method", "POST"),
			attribute.String("url.full", "/v1.0/invoke/billing/method/pay"),
			attribute.String("server.address", "127.0.0.1"),
			attribute.String("server.port", "45678"),
			attribute.String("rpc.service", "ServiceInvocation"),
			attribute.String("net.peer.name", "billing")))
		s.End()
	}
	spans := rec.Ended()
	b.ReportAllocs()
	for b.Loop() {
		if err := exp.ExportSpans(context.Background(), spans); err != nil {
			b.Fatal(err)
		}
	}
	if posted.Load() == 0 {
		b.Fatal("the collector received nothing")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/span")
	b.ReportMetric(float64(posted.Load())/float64(b.N*batch), "bytes/span")
}
