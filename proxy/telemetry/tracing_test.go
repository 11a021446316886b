package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/telemetry"
	"github.com/outrigger/outrigger/proxy/telemetry/telemetrytest"
)

const (
	parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpan  = "00f067aa0ba902b7"
)

func zipkinSpec(url, rate string) resources.TracingSpec {
	return resources.TracingSpec{SamplingRate: rate, Zipkin: &resources.ZipkinSpec{EndpointAddress: url}}
}

func noEnv(string) string { return "" }

func newTracing(t *testing.T, spec resources.TracingSpec, opts ...telemetry.TracingOption) *telemetry.Tracing {
	t.Helper()
	opts = append([]telemetry.TracingOption{telemetry.WithGetenv(noEnv)}, opts...)
	tr, err := telemetry.NewTracing(context.Background(), spec, "app1", slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

func TestZipkinCollectorReceivesSpanChildOfIncomingTraceparent(t *testing.T) {
	zc := telemetrytest.NewCollector(t)
	tr := newTracing(t, zipkinSpec(zc.URL(), "1"))
	if !tr.Enabled() || tr.SamplingRate() != 1 {
		t.Fatalf("enabled=%v rate=%v", tr.Enabled(), tr.SamplingRate())
	}

	h := http.Header{}
	h.Set("traceparent", "00-"+parentTrace+"-"+parentSpan+"-01")
	h.Set("tracestate", "vendor=x")
	ctx, span := tr.StartFromHeader(context.Background(), h, "/v1.0/state/s", trace.SpanKindClient)
	sc := span.SpanContext()
	if sc.TraceID().String() != parentTrace || !sc.IsSampled() {
		t.Fatalf("span %v is not in the incoming trace", sc)
	}
	// The request's headers now carry the new span, so a forwarded request
	// is its child.
	if got, want := h.Get("traceparent"), "00-"+parentTrace+"-"+sc.SpanID().String()+"-01"; got != want {
		t.Fatalf("rewritten traceparent %q, want %q", got, want)
	}
	if got := h.Get("tracestate"); got != "vendor=x" {
		t.Fatalf("tracestate %q not kept", got)
	}
	if got := telemetry.Traceparent(ctx); got != h.Get("traceparent") {
		t.Fatalf("Traceparent(ctx) = %q", got)
	}
	_, child := tr.Start(ctx, "child", trace.SpanKindInternal)
	child.End()
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	got := zc.WaitFor(t, 5*time.Second, func(s telemetrytest.Span) bool { return s.Name == "/v1.0/state/s" })
	if got.TraceID != parentTrace || got.ParentID != parentSpan || got.ID != sc.SpanID().String() {
		t.Fatalf("span ids trace=%s parent=%s id=%s", got.TraceID, got.ParentID, got.ID)
	}
	if got.Kind != "CLIENT" || got.LocalEndpoint.ServiceName != "app1" {
		t.Fatalf("kind %q service %q", got.Kind, got.LocalEndpoint.ServiceName)
	}
	// daprd's tracer name, as Zipkin shows it.
	if got.Tags["otel.scope.name"] != "dapr-diagnostics" || got.Tags["service.name"] != "app1" {
		t.Fatalf("tags %v", got.Tags)
	}
	c := zc.WaitFor(t, 5*time.Second, func(s telemetrytest.Span) bool { return s.Name == "child" })
	if c.ParentID != sc.SpanID().String() || c.TraceID != parentTrace {
		t.Fatalf("child not under the server span: %+v", c)
	}
}

func TestNoIncomingTraceStartsANewTrace(t *testing.T) {
	zc := telemetrytest.NewCollector(t)
	tr := newTracing(t, zipkinSpec(zc.URL(), "1"))
	h := http.Header{}
	_, span := tr.StartFromHeader(context.Background(), h, "root", trace.SpanKindClient)
	span.End()
	if !span.SpanContext().IsValid() || h.Get("traceparent") != telemetry.FormatTraceparent(span.SpanContext()) {
		t.Fatalf("header %q for span %v", h.Get("traceparent"), span.SpanContext())
	}
	_ = tr.ForceFlush(context.Background())
	got := zc.WaitFor(t, 5*time.Second, func(s telemetrytest.Span) bool { return s.Name == "root" })
	if got.ParentID != "" {
		t.Fatalf("root span has parent %q", got.ParentID)
	}
}

func TestSamplingZeroTurnsTracingOff(t *testing.T) {
	zc := telemetrytest.NewCollector(t)
	for _, spec := range []resources.TracingSpec{
		zipkinSpec(zc.URL(), "0"),
		zipkinSpec(zc.URL(), "0.0"),
		{},                   // no spec.tracing at all
		{SamplingRate: "-1"}, // nonsense but not positive
	} {
		tr := newTracing(t, spec)
		if tr.Enabled() {
			t.Fatalf("%+v: tracing on", spec)
		}
		h := http.Header{"Traceparent": {"00-" + parentTrace + "-" + parentSpan + "-01"}}
		ctx, span := tr.StartFromHeader(context.Background(), h, "x", trace.SpanKindClient)
		if span.IsRecording() || span.SpanContext().IsValid() {
			t.Fatalf("%+v: span recording", spec)
		}
		if h.Get("traceparent") != "00-"+parentTrace+"-"+parentSpan+"-01" {
			t.Fatalf("%+v: header rewritten to %q", spec, h.Get("traceparent"))
		}
		if ctx != context.Background() {
			t.Fatalf("%+v: context changed", spec)
		}
		span.End()
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var nilTracing *telemetry.Tracing
	if nilTracing.Enabled() {
		t.Fatal("nil tracing enabled")
	}
	_, s := nilTracing.Start(context.Background(), "x", trace.SpanKindInternal)
	s.End()
	if zc.Posts() != 0 {
		t.Fatalf("collector got %d posts with tracing off", zc.Posts())
	}
}

func TestSamplerIsParentBased(t *testing.T) {
	zc := telemetrytest.NewCollector(t)
	tiny := newTracing(t, zipkinSpec(zc.URL(), "0.000000001"))
	h := http.Header{"Traceparent": {"00-" + parentTrace + "-" + parentSpan + "-01"}}
	_, s := tiny.StartFromHeader(context.Background(), h, "x", trace.SpanKindClient)
	if !s.SpanContext().IsSampled() {
		t.Fatal("a sampled parent must be followed whatever the rate")
	}
	s.End()
	_, root := tiny.StartFromHeader(context.Background(), http.Header{}, "x", trace.SpanKindClient)
	if root.SpanContext().IsSampled() {
		t.Fatal("a root at rate 1e-9 was sampled")
	}
	if !strings.HasSuffix(telemetry.FormatTraceparent(root.SpanContext()), "-00") {
		t.Fatal("unsampled span must still propagate, with flags 00")
	}

	all := newTracing(t, zipkinSpec(zc.URL(), "1"))
	h = http.Header{"Traceparent": {"00-" + parentTrace + "-" + parentSpan + "-00"}}
	_, s = all.StartFromHeader(context.Background(), h, "x", trace.SpanKindClient)
	if s.SpanContext().IsSampled() {
		t.Fatal("an unsampled parent must not be sampled at rate 1")
	}
	if got := h.Get("traceparent"); !strings.HasPrefix(got, "00-"+parentTrace+"-") || !strings.HasSuffix(got, "-00") {
		t.Fatalf("forwarded traceparent %q", got)
	}
}

func TestNewTracingConfiguration(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	yes := true
	cases := []struct {
		name    string
		spec    resources.TracingSpec
		env     map[string]string
		on      bool
		rate    float64
		wantErr string
		wantLog string
	}{
		{name: "empty", spec: resources.TracingSpec{}},
		{name: "rate without exporter", spec: resources.TracingSpec{SamplingRate: "1"}, on: true, rate: 1},
		{name: "exporter without rate uses daprd default", spec: resources.TracingSpec{Stdout: true}, on: true, rate: 1e-4},
		{name: "unparsable rate", spec: resources.TracingSpec{SamplingRate: "often", Stdout: true}, on: true, rate: 1e-4, wantLog: "not a number"},
		{name: "rate above one", spec: resources.TracingSpec{SamplingRate: "3"}, on: true, rate: 1},
		{name: "zipkin without scheme", spec: zipkinSpec("localhost:9411/api/v2/spans", "1"), wantErr: "zipkin.endpointAddress"},
		{name: "otel grpc", spec: resources.TracingSpec{SamplingRate: "1", Otel: &resources.OtelSpec{EndpointAddress: "127.0.0.1:4317", Protocol: "grpc"}}, on: true, rate: 1},
		{name: "otel http secure", spec: resources.TracingSpec{SamplingRate: "0.5", Otel: &resources.OtelSpec{EndpointAddress: "127.0.0.1:4318", Protocol: "http", IsSecure: &yes}}, on: true, rate: 0.5},
		{name: "otel url", spec: resources.TracingSpec{SamplingRate: "1", Otel: &resources.OtelSpec{EndpointAddress: "http://127.0.0.1:4318", Protocol: "http"}}, on: true, rate: 1},
		{name: "otel bad protocol", spec: resources.TracingSpec{SamplingRate: "1", Otel: &resources.OtelSpec{EndpointAddress: "127.0.0.1:4317", Protocol: "tcp"}}, wantErr: `protocol "tcp"`},
		{name: "otel from env", spec: resources.TracingSpec{}, env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, on: true, rate: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs.Reset()
			getenv := func(k string) string { return c.env[k] }
			tr, err := telemetry.NewTracing(context.Background(), c.spec, "app1", log, telemetry.WithGetenv(getenv), telemetry.WithStdout(&bytes.Buffer{}))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			if tr.Enabled() != c.on || tr.SamplingRate() != c.rate {
				t.Fatalf("enabled=%v rate=%v, want %v %v", tr.Enabled(), tr.SamplingRate(), c.on, c.rate)
			}
			if c.wantLog != "" && !strings.Contains(logs.String(), c.wantLog) {
				t.Fatalf("log %q lacks %q", logs.String(), c.wantLog)
			}
		})
	}
}

func TestTracingSpecFromEnv(t *testing.T) {
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}
	got := telemetry.TracingSpecFromEnv(resources.TracingSpec{}, func(k string) string { return env[k] })
	if got.Otel == nil || got.Otel.EndpointAddress != "collector:4317" || got.Otel.Protocol != "grpc" ||
		got.Otel.IsSecure == nil || *got.Otel.IsSecure || got.SamplingRate != "1" {
		t.Fatalf("%+v %+v", got, got.Otel)
	}
	set := resources.TracingSpec{SamplingRate: "0.1", Otel: &resources.OtelSpec{EndpointAddress: "mine:4317"}}
	if got := telemetry.TracingSpecFromEnv(set, func(k string) string { return env[k] }); got.Otel.EndpointAddress != "mine:4317" || got.SamplingRate != "0.1" {
		t.Fatalf("configured endpoint overridden: %+v", got.Otel)
	}
}

func TestStdoutExporterWritesSpans(t *testing.T) {
	var out bytes.Buffer
	tr := newTracing(t, resources.TracingSpec{SamplingRate: "1", Stdout: true}, telemetry.WithStdout(&out))
	_, s := tr.Start(context.Background(), "to-stdout", trace.SpanKindServer)
	s.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"Name":"to-stdout"`) {
		t.Fatalf("stdout exporter wrote %q", out.String())
	}
}

// TestNoSpanIsLostWhileTheCollectorStalls: a burst of spans larger than the
// OpenTelemetry SDK's default export queue (2048), ended while the collector
// holds the first batch, all reach the collector once it answers.
func TestNoSpanIsLostWhileTheCollectorStalls(t *testing.T) {
	release := make(chan struct{})
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		var batch []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		received.Add(int64(len(batch)))
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	tr := newTracing(t, zipkinSpec(srv.URL+"/api/v2/spans", "1"))

	const burst = 5000
	for range burst {
		_, span := tr.Start(context.Background(), "burst", trace.SpanKindServer)
		span.End()
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := received.Load(); got != burst {
		t.Fatalf("collector received %d of %d spans", got, burst)
	}
}
