package telemetry

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// StartFromHeader opens a span whose parent is the trace context carried in
// h (traceparent/tracestate; none starts a new trace), then rewrites h's
// traceparent/tracestate to the new span, so a request forwarded with h
// makes its next hop a child of this span. Off, it changes nothing.
func (t *Tracing) StartFromHeader(ctx context.Context, h http.Header, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if !t.Enabled() {
		return ctx, noopSpan()
	}
	if sc, ok := SpanContextFromHTTP(h); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	ctx, span := t.tracer.Start(ctx, name, t.startOpts(kind)...)
	SetHTTPHeaders(h, span.SpanContext())
	return ctx, span
}

// StartFromIncomingGRPC opens a span whose parent is the trace context in
// ctx's incoming gRPC metadata (grpc-trace-bin, else traceparent), and
// returns a context whose incoming metadata carries the new span instead
// (grpc-trace-bin, traceparent, tracestate), so handlers that forward the
// caller's metadata propagate this span. Off, it changes nothing.
func (t *Tracing) StartFromIncomingGRPC(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if !t.Enabled() {
		return ctx, noopSpan()
	}
	md, _ := metadata.FromIncomingContext(ctx) // a copy we may change
	if md == nil {
		md = metadata.MD{}
	}
	parent := ctx
	if sc, ok := SpanContextFromGRPC(md); ok {
		parent = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	ctx, span := t.tracer.Start(parent, name, t.startOpts(kind)...)
	SetGRPCMetadata(md, span.SpanContext())
	return metadata.NewIncomingContext(ctx, md), span
}
