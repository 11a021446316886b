package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/exporters/zipkin"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/resources"
)

// daprDefaultSamplingRate is what daprd uses when samplingRate is empty or
// not a number.
const daprDefaultSamplingRate = 1e-4

// tracerName is daprd's tracer name: exporters show it as the instrumentation
// scope (Zipkin's otel.scope.name tag on every span).
const tracerName = "dapr-diagnostics"

// exportQueueSize is the batch span processor's queue. The SDK's default
// (2048 spans) holds a quarter of a second of a sidecar serving 8,000 traced
// calls a second: one export that takes longer (a collector on a loaded
// machine, a GC pause) and the spans ending meanwhile are dropped without a
// word. This holds a second of them, about 10 MiB of finished spans at
// worst, and only while the collector lags. OTEL_BSP_MAX_QUEUE_SIZE still
// overrides it. Batches keep the SDK's 512 spans: the export cost is per
// span (JSON encoding for Zipkin), larger batches gain nothing.
const exportQueueSize = 8192

// Tracing creates spans and exports them. A nil *Tracing, or one built from
// a spec that turns tracing off, is valid: Enabled reports false, Start
// returns the context unchanged with a no-op span, and nothing is exported.
type Tracing struct {
	appID  string
	rate   float64
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	// kindOpts[k] is the start options of a span of kind k, built once: a
	// variadic option slice built per call escapes to the heap.
	kindOpts [trace.SpanKindConsumer + 1][]trace.SpanStartOption
}

// TracingOption adjusts NewTracing.
type TracingOption func(*tracingOptions)

type tracingOptions struct {
	stdout io.Writer
	getenv func(string) string
}

// WithStdout sets where the stdout exporter (spec.tracing.stdout) writes;
// os.Stdout by default.
func WithStdout(w io.Writer) TracingOption { return func(o *tracingOptions) { o.stdout = w } }

// WithGetenv sets how the OTEL_* environment overrides are read; os.Getenv
// by default.
func WithGetenv(f func(string) string) TracingOption { return func(o *tracingOptions) { o.getenv = f } }

// NewTracing builds the tracer provider for Configuration spec.tracing.
//
// Tracing is off when the spec is empty (no Configuration, or no
// spec.tracing), or samplingRate is "0". An empty or unparsable samplingRate
// with an exporter configured uses daprd's default, 1/10000, with a warning
// for the unparsable one. OTEL_EXPORTER_OTLP_ENDPOINT / _PROTOCOL / _INSECURE
// fill spec.tracing.otel when it has no endpoint, as in daprd, and
// OTEL_SERVICE_NAME overrides the service name (the app id). A malformed
// exporter address or an unknown OTLP protocol is an error.
func NewTracing(ctx context.Context, spec resources.TracingSpec, appID string, log *slog.Logger, opts ...TracingOption) (*Tracing, error) {
	o := tracingOptions{stdout: os.Stdout, getenv: os.Getenv}
	for _, f := range opts {
		f(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	spec = TracingSpecFromEnv(spec, o.getenv)
	hasExporter := spec.Stdout || (spec.Zipkin != nil && spec.Zipkin.EndpointAddress != "") ||
		(spec.Otel != nil && spec.Otel.EndpointAddress != "")
	if !hasExporter && spec.SamplingRate == "" {
		return &Tracing{appID: appID}, nil
	}
	rate, err := strconv.ParseFloat(strings.TrimSpace(spec.SamplingRate), 64)
	switch {
	case spec.SamplingRate == "":
		rate = daprDefaultSamplingRate
	case err != nil:
		log.Warn("spec.tracing.samplingRate is not a number; using daprd's default", "samplingRate", spec.SamplingRate, "default", daprDefaultSamplingRate)
		rate = daprDefaultSamplingRate
	case rate <= 0:
		return &Tracing{appID: appID}, nil
	case rate > 1:
		rate = 1
	}

	var exporters []sdktrace.SpanExporter
	fail := func(err error) (*Tracing, error) {
		for _, e := range exporters {
			_ = e.Shutdown(context.WithoutCancel(ctx))
		}
		return nil, err
	}
	if spec.Zipkin != nil && spec.Zipkin.EndpointAddress != "" {
		addr := spec.Zipkin.EndpointAddress
		if u, err := url.Parse(addr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail(fmt.Errorf("spec.tracing.zipkin.endpointAddress %q: want an http(s) URL such as http://localhost:9411/api/v2/spans", addr))
		}
		// No logger: the exporter's logger receives every batch's whole JSON
		// body (it logs "about to send …" before each POST), which cost a
		// quarter of the sidecar's CPU and flooded the log. Export failures
		// still surface: the batch processor reports them to OpenTelemetry's
		// error handler.
		e, err := zipkin.New(addr)
		if err != nil {
			return fail(fmt.Errorf("spec.tracing.zipkin: %w", err))
		}
		exporters = append(exporters, e)
	}
	if spec.Stdout {
		e, err := stdouttrace.New(stdouttrace.WithWriter(o.stdout))
		if err != nil {
			return fail(fmt.Errorf("spec.tracing.stdout: %w", err))
		}
		exporters = append(exporters, e)
	}
	if spec.Otel != nil && spec.Otel.EndpointAddress != "" {
		e, err := otlpExporter(ctx, *spec.Otel)
		if err != nil {
			return fail(err)
		}
		exporters = append(exporters, e)
	}

	service := appID
	if s := o.getenv("OTEL_SERVICE_NAME"); s != "" {
		service = s
	}
	popts := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(rate))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
	}
	var bopts []sdktrace.BatchSpanProcessorOption
	if o.getenv("OTEL_BSP_MAX_QUEUE_SIZE") == "" {
		bopts = append(bopts, sdktrace.WithMaxQueueSize(exportQueueSize))
	}
	for _, e := range exporters {
		popts = append(popts, sdktrace.WithBatcher(e, bopts...))
	}
	tp := sdktrace.NewTracerProvider(popts...)
	log.Info("tracing enabled", "samplingRate", rate, "exporters", len(exporters))
	t := &Tracing{appID: appID, rate: rate, tp: tp, tracer: tp.Tracer(tracerName)}
	for k := range t.kindOpts {
		t.kindOpts[k] = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKind(k))}
	}
	return t, nil
}

// startOpts is the start options for a span of kind, without attributes.
func (t *Tracing) startOpts(kind trace.SpanKind) []trace.SpanStartOption {
	if kind < 0 || int(kind) >= len(t.kindOpts) {
		return []trace.SpanStartOption{trace.WithSpanKind(kind)}
	}
	return t.kindOpts[kind]
}

func otlpExporter(ctx context.Context, spec resources.OtelSpec) (sdktrace.SpanExporter, error) {
	secure := spec.IsSecure != nil && *spec.IsSecure
	addr := spec.EndpointAddress
	hasScheme := strings.Contains(addr, "://")
	if hasScheme {
		if u, err := url.Parse(addr); err != nil || u.Host == "" {
			return nil, fmt.Errorf("spec.tracing.otel.endpointAddress %q: want host:port or a URL", addr)
		}
	}
	switch p := strings.ToLower(spec.Protocol); p {
	case "", "grpc":
		opts := []otlptracegrpc.Option{}
		if hasScheme {
			opts = append(opts, otlptracegrpc.WithEndpointURL(addr))
		} else {
			opts = append(opts, otlptracegrpc.WithEndpoint(addr))
		}
		if !secure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		e, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("spec.tracing.otel (grpc %s): %w", addr, err)
		}
		return e, nil
	case "http", "http/protobuf":
		opts := []otlptracehttp.Option{}
		if hasScheme {
			opts = append(opts, otlptracehttp.WithEndpointURL(addr))
		} else {
			opts = append(opts, otlptracehttp.WithEndpoint(addr))
		}
		if !secure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		e, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("spec.tracing.otel (http %s): %w", addr, err)
		}
		return e, nil
	default:
		return nil, fmt.Errorf("spec.tracing.otel.protocol %q: want grpc or http", p)
	}
}

// TracingSpecFromEnv applies daprd's OTEL_EXPORTER_OTLP_* overrides: when
// spec.otel has no endpoint and OTEL_EXPORTER_OTLP_ENDPOINT is set, it
// becomes the endpoint (scheme stripped), the protocol is http when
// OTEL_EXPORTER_OTLP_PROTOCOL starts with "http" (else grpc),
// OTEL_EXPORTER_OTLP_INSECURE=true makes it insecure, and an empty
// samplingRate becomes "1". spec is not modified.
func TracingSpecFromEnv(spec resources.TracingSpec, getenv func(string) string) resources.TracingSpec {
	if spec.Otel != nil && spec.Otel.EndpointAddress != "" {
		return spec
	}
	ep := getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if ep == "" {
		return spec
	}
	ep = strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://")
	otel := resources.OtelSpec{EndpointAddress: ep, Protocol: "grpc"}
	if spec.Otel != nil {
		otel.IsSecure = spec.Otel.IsSecure
	}
	if strings.HasPrefix(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "http") {
		otel.Protocol = "http"
	}
	if getenv("OTEL_EXPORTER_OTLP_INSECURE") == "true" {
		f := false
		otel.IsSecure = &f
	}
	spec.Otel = &otel
	if spec.SamplingRate == "" {
		spec.SamplingRate = "1"
	}
	return spec
}

// Enabled reports whether spans are created at all.
func (t *Tracing) Enabled() bool { return t != nil && t.tp != nil }

// SamplingRate is the effective root sampling rate (0 when off).
func (t *Tracing) SamplingRate() float64 {
	if t == nil {
		return 0
	}
	return t.rate
}

// AppID is the app id spans are named after.
func (t *Tracing) AppID() string {
	if t == nil {
		return ""
	}
	return t.appID
}

// Tracer is the tracer spans come from (a no-op tracer when off), for code
// that wants OpenTelemetry's own API.
func (t *Tracing) Tracer() trace.Tracer {
	if !t.Enabled() {
		return noop.NewTracerProvider().Tracer("")
	}
	return t.tracer
}

// Start opens a span as a child of the span (or remote span context) in ctx.
// Off, it returns ctx and a no-op span without allocating.
func (t *Tracing) Start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !t.Enabled() {
		return ctx, noopSpan()
	}
	if len(attrs) == 0 {
		return t.tracer.Start(ctx, name, t.startOpts(kind)...)
	}
	return t.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// ForceFlush exports every finished span now.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.tp.ForceFlush(ctx); err != nil {
		return fmt.Errorf("flush spans: %w", err)
	}
	return nil
}

// Shutdown flushes the spans still buffered and stops the exporters. Spans
// started afterwards are dropped.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.tp.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("shut down tracing: %w", err)
	}
	return nil
}

// SetHTTPStatus marks span as failed for a status of 400 or above, with
// daprd's description "Code(404): Not Found".
func SetHTTPStatus(span trace.Span, code int) {
	if code < 400 || !span.IsRecording() {
		return
	}
	text := http.StatusText(code)
	if text == "" {
		text = "Unknown"
	}
	span.SetStatus(codes.Error, "Code("+strconv.Itoa(code)+"): "+text)
}

// noopSpan is the span handed out when tracing is off: it records nothing,
// ending it does nothing, and getting it does not allocate.
func noopSpan() trace.Span { return trace.SpanFromContext(context.Background()) }

// SetGRPCStatus marks span as failed with the error's gRPC status message.
func SetGRPCStatus(span trace.Span, err error) {
	if err == nil || !span.IsRecording() {
		return
	}
	if s, ok := status.FromError(err); ok && s.Code() != grpccodes.OK {
		span.SetStatus(codes.Error, s.Message())
		return
	}
	span.SetStatus(codes.Error, err.Error())
}
