package telemetry

import (
	"context"
	"encoding/hex"
	"net/http"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// Trace-context carriers, as daprd names them.
const (
	TraceparentHeader = "traceparent"
	TracestateHeader  = "tracestate"
	GRPCTraceBinKey   = "grpc-trace-bin"

	// maxTracestateLen is daprd's cap on a propagated tracestate.
	maxTracestateLen = 512
)

// Canonical HTTP forms, so lookups in an http.Header do not canonicalize
// (and allocate) on every request.
const (
	traceparentCanon = "Traceparent"
	tracestateCanon  = "Tracestate"
)

// ParseTraceparent parses a W3C traceparent
// ("00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"). Versions above 00
// are read as 00 when they have at least its fields, as the spec requires;
// version ff, all-zero ids and malformed values are rejected.
func ParseTraceparent(s string) (trace.SpanContext, bool) {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return trace.SpanContext{}, false
	}
	var ver [1]byte
	if !decodeHex(ver[:], s[0:2]) || ver[0] == 0xff {
		return trace.SpanContext{}, false
	}
	if ver[0] == 0 && len(s) != 55 {
		return trace.SpanContext{}, false
	}
	if len(s) > 55 && s[55] != '-' {
		return trace.SpanContext{}, false
	}
	var cfg trace.SpanContextConfig
	var flags [1]byte
	if !decodeHex(cfg.TraceID[:], s[3:35]) || !decodeHex(cfg.SpanID[:], s[36:52]) || !decodeHex(flags[:], s[53:55]) {
		return trace.SpanContext{}, false
	}
	cfg.TraceFlags = trace.TraceFlags(flags[0]) & trace.FlagsSampled
	cfg.Remote = true
	sc := trace.NewSpanContext(cfg)
	return sc, sc.IsValid()
}

// decodeHex decodes lowercase hex only, as W3C requires.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := 0; i < len(dst); i++ {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// FormatTraceparent renders sc as a version-00 traceparent, or "" for an
// invalid span context.
func FormatTraceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	b[53] = '0'
	b[54] = '0'
	if sc.IsSampled() {
		b[54] = '1'
	}
	return string(b[:])
}

// SpanContextFromHTTP reads traceparent (and tracestate) from h. A malformed
// tracestate is dropped; a malformed traceparent means no parent.
func SpanContextFromHTTP(h http.Header) (trace.SpanContext, bool) {
	tp := headerValue(h, traceparentCanon, TraceparentHeader)
	if tp == "" {
		return trace.SpanContext{}, false
	}
	sc, ok := ParseTraceparent(tp)
	if !ok {
		return trace.SpanContext{}, false
	}
	if ts := headerValue(h, tracestateCanon, TracestateHeader); ts != "" {
		if state, err := trace.ParseTraceState(ts); err == nil {
			sc = sc.WithTraceState(state)
		}
	}
	return sc, true
}

func headerValue(h http.Header, canon, lower string) string {
	if v := h[canon]; len(v) > 0 {
		return v[0]
	}
	if v := h[lower]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// SetHTTPHeaders writes sc as traceparent/tracestate into h, replacing any
// previous values (also ones stored under a lowercase key). An invalid sc
// leaves h alone.
func SetHTTPHeaders(h http.Header, sc trace.SpanContext) {
	tp := FormatTraceparent(sc)
	if tp == "" {
		return
	}
	delete(h, TraceparentHeader)
	delete(h, TracestateHeader)
	// Deleted before it is set again: assigning to a map holding 8 keys
	// grows it even when the key is already there, and a forwarded call's
	// headers often hold exactly 8 (850 bytes a call, seen in the callee).
	delete(h, traceparentCanon)
	h[traceparentCanon] = []string{tp}
	if ts := sc.TraceState().String(); ts != "" && len(ts) <= maxTracestateLen {
		h[tracestateCanon] = []string{ts}
	} else {
		delete(h, tracestateCanon)
	}
}

// InjectHTTP writes the trace context of the span in ctx into h (for a call
// the sidecar makes: to the app, to another sidecar, to a component).
func InjectHTTP(ctx context.Context, h http.Header) {
	SetHTTPHeaders(h, trace.SpanContextFromContext(ctx))
}

// ExtractHTTP returns ctx with the trace context in h as its remote parent.
func ExtractHTTP(ctx context.Context, h http.Header) context.Context {
	if sc, ok := SpanContextFromHTTP(h); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// Traceparent is the traceparent of the span in ctx ("" when there is none),
// for CloudEvents' traceparent/traceid fields.
func Traceparent(ctx context.Context) string {
	return FormatTraceparent(trace.SpanContextFromContext(ctx))
}

// Tracestate is the tracestate of the span in ctx, for CloudEvents.
func Tracestate(ctx context.Context) string {
	return trace.SpanContextFromContext(ctx).TraceState().String()
}

// ContextWithTraceparent returns ctx with the given traceparent/tracestate as
// remote parent (e.g. from a CloudEvent at delivery). Malformed values leave
// ctx unchanged.
func ContextWithTraceparent(ctx context.Context, traceparent, tracestate string) context.Context {
	sc, ok := ParseTraceparent(traceparent)
	if !ok {
		return ctx
	}
	if tracestate != "" {
		if state, err := trace.ParseTraceState(tracestate); err == nil {
			sc = sc.WithTraceState(state)
		}
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// BinaryFromSpanContext encodes sc in the gRPC binary trace-context layout
// carried in grpc-trace-bin (OpenCensus' format, which daprd uses): version
// 0, then field 0 = 16-byte trace id, field 1 = 8-byte span id, field 2 =
// 1-byte trace options. An invalid sc encodes to nil.
func BinaryFromSpanContext(sc trace.SpanContext) []byte {
	if !sc.IsValid() {
		return nil
	}
	b := make([]byte, 29)
	tid, sid := sc.TraceID(), sc.SpanID()
	b[0] = 0 // version
	b[1] = 0 // field: trace id
	copy(b[2:18], tid[:])
	b[18] = 1 // field: span id
	copy(b[19:27], sid[:])
	b[27] = 2 // field: trace options
	b[28] = byte(sc.TraceFlags() & trace.FlagsSampled)
	return b
}

// SpanContextFromBinary decodes a grpc-trace-bin value. Unknown versions,
// a missing trace id and all-zero ids are rejected.
func SpanContextFromBinary(b []byte) (trace.SpanContext, bool) {
	if len(b) < 18 || b[0] != 0 || b[1] != 0 {
		return trace.SpanContext{}, false
	}
	var cfg trace.SpanContextConfig
	copy(cfg.TraceID[:], b[2:18])
	b = b[18:]
	if len(b) >= 9 && b[0] == 1 {
		copy(cfg.SpanID[:], b[1:9])
		b = b[9:]
	}
	if len(b) >= 2 && b[0] == 2 {
		cfg.TraceFlags = trace.TraceFlags(b[1]) & trace.FlagsSampled
	}
	cfg.Remote = true
	sc := trace.NewSpanContext(cfg)
	return sc, sc.IsValid()
}

// SpanContextFromGRPC reads the trace context from gRPC metadata:
// grpc-trace-bin first, then traceparent/tracestate (what OpenTelemetry
// clients send), as daprd does.
func SpanContextFromGRPC(md metadata.MD) (trace.SpanContext, bool) {
	if v := md[GRPCTraceBinKey]; len(v) > 0 {
		if sc, ok := SpanContextFromBinary([]byte(v[0])); ok {
			return sc, true
		}
	}
	v := md[TraceparentHeader]
	if len(v) == 0 {
		return trace.SpanContext{}, false
	}
	sc, ok := ParseTraceparent(v[0])
	if !ok {
		return trace.SpanContext{}, false
	}
	if ts := md[TracestateHeader]; len(ts) > 0 && ts[0] != "" {
		if state, err := trace.ParseTraceState(ts[0]); err == nil {
			sc = sc.WithTraceState(state)
		}
	}
	return sc, true
}

// SetGRPCMetadata writes sc into md as grpc-trace-bin, traceparent and
// tracestate, replacing previous values. An invalid sc leaves md alone.
func SetGRPCMetadata(md metadata.MD, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	md[GRPCTraceBinKey] = []string{string(BinaryFromSpanContext(sc))}
	md[TraceparentHeader] = []string{FormatTraceparent(sc)}
	if ts := sc.TraceState().String(); ts != "" && len(ts) <= maxTracestateLen {
		md[TracestateHeader] = []string{ts}
	} else {
		delete(md, TracestateHeader)
	}
}

// InjectGRPC returns ctx whose outgoing metadata carries the trace context
// of the span in ctx (grpc-trace-bin, traceparent, tracestate).
func InjectGRPC(ctx context.Context) context.Context {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ctx
	}
	md, _ := metadata.FromOutgoingContext(ctx) // a copy
	if md == nil {
		md = metadata.MD{}
	}
	SetGRPCMetadata(md, sc)
	return metadata.NewOutgoingContext(ctx, md)
}

// ExtractGRPC returns ctx with the trace context of its incoming metadata as
// remote parent.
func ExtractGRPC(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	if sc, ok := SpanContextFromGRPC(md); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}
