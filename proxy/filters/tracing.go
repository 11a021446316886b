package filters

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/outrigger/outrigger/proxy/pipeline"
	"github.com/outrigger/outrigger/proxy/telemetry"
)

// Span attribute keys daprd sets on API spans.
const (
	attrDaprAPI        = "dapr.api"
	attrDaprStatusCode = "dapr.status_code"
	attrDaprProtocol   = "dapr.protocol"
	attrDaprActor      = "dapr.actor"
	attrDBSystem       = "db.system"
	attrDBName         = "db.name"
	attrDBStatement    = "db.statement"
	attrDBConnString   = "db.connection_string"
	attrMsgSystem      = "messaging.system"
	attrMsgDestination = "messaging.destination.name"
	attrRPCService     = "rpc.service"
	attrNetPeerName    = "net.peer.name"
	attrHTTPMethod     = "http.request.method"
	attrURLFull        = "url.full"
	attrServerAddress  = "server.address"
	attrServerPort     = "server.port"

	// daprSpanNameKey is where a Dapr request message's AppendSpanAttributes
	// puts the span's corrected name; keys with this prefix are not attributes.
	daprInternalPrefix = "__dapr."
	daprSpanNameKey    = daprInternalPrefix + "spanname"

	grpcInvokeService = "/dapr.proto.runtime.v1.Dapr/InvokeService"
	grpcRuntimePrefix = "/dapr.proto.runtime."
	grpcProxyAppIDKey = "dapr-app-id"
)

// Tracing opens a span for every API call, as daprd does: the caller's
// traceparent/tracestate (HTTP) or grpc-trace-bin/traceparent (gRPC) is the
// parent; the span goes into the request context; the request's own trace
// headers (and, on gRPC, its incoming metadata) are rewritten to the new
// span, so whatever the router forwards — to another sidecar, to the app —
// is its child; the response carries the span's traceparent (HTTP, unless
// the app's response already has one) or grpc-trace-bin (gRPC, except
// InvokeService and proxied calls, whose headers are the app's).
//
// Names, kinds and attributes are daprd's: HTTP spans are named by path and
// renamed after the API (/v1.0/invoke/{id}/method/{m} → CallLocal/{id}/{m},
// actor calls → CallActor/{type}/{m}); gRPC spans are named by full method
// and renamed by the request message's AppendSpanAttributes
// (InvokeService → CallLocal/{id}/{m}). API spans have kind client, as in
// daprd (the sidecar calls out on the app's behalf); proxied gRPC calls
// addressed to this app are server spans. Health checks are not traced.
//
// With tracing off (t nil, no exporter and no samplingRate, or samplingRate
// "0") the filter has no HTTP or gRPC form at all: it costs nothing.
func Tracing(t *telemetry.Tracing) pipeline.Filter {
	f := pipeline.Filter{Name: "tracing"}
	if !t.Enabled() {
		return f
	}
	appID := t.AppID()
	// Attribute slices are reused: SetAttributes copies them into the span.
	attrPool := sync.Pool{New: func() any { s := make([]attribute.KeyValue, 0, 16); return &s }}
	f.HTTP = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			path := r.URL.Path
			if strings.Contains(path, "/healthz") {
				next.ServeHTTP(w, r)
				return
			}
			ctx, span := t.StartFromHeader(r.Context(), r.Header, path, trace.SpanKindClient)
			// StartFromHeader has just written the span's traceparent/tracestate into
			// r.Header: the response carries the same values.
			tw := &traceWriter{ResponseWriter: w, status: http.StatusOK}
			if v := r.Header["Traceparent"]; len(v) > 0 {
				tw.traceparent = v[0]
			}
			if v := r.Header["Tracestate"]; len(v) > 0 {
				tw.tracestate = v[0]
			}
			r2 := r.WithContext(ctx)
			defer func() {
				if span.IsRecording() {
					ap := attrPool.Get().(*[]attribute.KeyValue)
					name, attrs := httpSpanAttributes((*ap)[:0], r2, path, tw.status)
					if name != "" {
						span.SetName(name)
					}
					span.SetAttributes(attrs...)
					clear(attrs)
					*ap = attrs[:0]
					attrPool.Put(ap)
				}
				telemetry.SetHTTPStatus(span, tw.status)
				span.End()
			}()
			next.ServeHTTP(tw, r2)
		})
	}
	f.Unary = func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		kind := trace.SpanKindClient
		if strings.HasPrefix(info.FullMethod, "/dapr.proto.internals.") {
			kind = trace.SpanKindServer
		}
		ctx, span := t.StartFromIncomingGRPC(ctx, info.FullMethod, kind)
		resp, err := h(ctx, req)
		if span.IsRecording() {
			grpcSpanAttributes(ctx, span, req, info.FullMethod)
		}
		if info.FullMethod != grpcInvokeService {
			if bin := telemetry.BinaryFromSpanContext(span.SpanContext()); bin != nil {
				_ = grpc.SetHeader(ctx, metadata.Pairs(telemetry.GRPCTraceBinKey, string(bin)))
			}
		}
		telemetry.SetGRPCStatus(span, err)
		span.End()
		return resp, err
	}
	f.Stream = func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		kind, proxied := trace.SpanKindClient, false
		if !strings.HasPrefix(info.FullMethod, grpcRuntimePrefix) {
			proxied = true
			if v := metadata.ValueFromIncomingContext(ss.Context(), grpcProxyAppIDKey); len(v) > 0 && v[0] == appID {
				kind = trace.SpanKindServer
			}
		}
		ctx, span := t.StartFromIncomingGRPC(ss.Context(), info.FullMethod, kind)
		if !proxied {
			if bin := telemetry.BinaryFromSpanContext(span.SpanContext()); bin != nil {
				_ = ss.SetHeader(metadata.Pairs(telemetry.GRPCTraceBinKey, string(bin)))
			}
		}
		err := h(srv, &tracedStream{ServerStream: ss, ctx: ctx})
		if span.IsRecording() {
			grpcSpanAttributes(ctx, span, nil, info.FullMethod)
		}
		telemetry.SetGRPCStatus(span, err)
		span.End()
		return err
	}
	return f
}

// tracedStream gives the handler the context holding the span.
type tracedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *tracedStream) Context() context.Context { return s.ctx }

// traceWriter sets traceparent/tracestate on the response just before its
// headers go out, unless the handler (the app's response) already set one,
// and remembers the status.
type traceWriter struct {
	http.ResponseWriter
	traceparent, tracestate string
	status                  int
	wrote                   bool
}

func (w *traceWriter) before() {
	if w.wrote {
		return
	}
	w.wrote = true
	h := w.ResponseWriter.Header()
	if len(h["Traceparent"]) == 0 && len(h["traceparent"]) == 0 && w.traceparent != "" {
		h["Traceparent"] = []string{w.traceparent}
		if w.tracestate != "" {
			h["Tracestate"] = []string{w.tracestate}
		}
	}
}

func (w *traceWriter) WriteHeader(code int) {
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		w.before()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *traceWriter) Write(b []byte) (int, error) {
	w.before()
	return w.ResponseWriter.Write(b)
}

func (w *traceWriter) Flush() {
	w.before()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *traceWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// httpSpanAttributes appends daprd's attributes for an HTTP API span to
// attrs, and returns the span's corrected name ("" to keep the path).
func httpSpanAttributes(attrs []attribute.KeyValue, r *http.Request, path string, status int) (string, []attribute.KeyValue) {
	for k, vs := range r.Header {
		if len(vs) == 0 || len(k) <= 5 || !strings.EqualFold(k[:5], "dapr-") || strings.EqualFold(k, APITokenHeader) {
			continue
		}
		attrs = append(attrs, attribute.String(strings.ToLower(k), vs[len(vs)-1]))
	}
	attrs = append(attrs,
		attribute.String(attrDaprProtocol, "http"),
		attribute.String(attrDaprAPI, r.Method+" "+path),
		attribute.String(attrDaprStatusCode, strconv.Itoa(status)),
		attribute.String(attrHTTPMethod, r.Method),
		attribute.String(attrURLFull, r.RequestURI),
	)
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, attribute.String(attrServerAddress, host), attribute.String(attrServerPort, port))
	}

	// /<version>/<api>/...
	seg := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 7)
	if len(seg) < 2 || !strings.HasPrefix(seg[0], "v1.0") {
		// Invocation addressed by the dapr-app-id header: /<method>.
		if id := r.Header.Get(grpcProxyAppIDKey); id != "" {
			method := strings.TrimPrefix(path, "/")
			attrs = append(attrs, attribute.String(attrRPCService, "ServiceInvocation"), attribute.String(attrNetPeerName, id))
			return "CallLocal/" + id + "/" + method, attrs
		}
		return "", attrs
	}
	store := func(system, name string) {
		attrs = append(attrs, attribute.String(attrDBSystem, system), attribute.String(attrDBConnString, system),
			attribute.String(attrDBStatement, r.Method+" "+path), attribute.String(attrDBName, name))
	}
	switch seg[1] {
	case "invoke": // invoke/{id}/method/{method...}
		if len(seg) >= 5 && seg[3] == "method" {
			id := seg[2]
			method := strings.Join(seg[4:], "/")
			attrs = append(attrs, attribute.String(attrRPCService, "ServiceInvocation"), attribute.String(attrNetPeerName, id))
			return "CallLocal/" + id + "/" + method, attrs
		}
	case "state":
		if len(seg) >= 3 {
			store("state", seg[2])
		}
	case "secrets":
		if len(seg) >= 3 {
			store("secrets", seg[2])
		}
	case "bindings":
		if len(seg) >= 3 {
			store("bindings", seg[2])
		}
	case "publish": // publish/{pubsub}/{topic...} or publish/bulk/{pubsub}/{topic...}
		rest := seg[2:]
		if len(rest) > 0 && rest[0] == "bulk" && strings.HasPrefix(seg[0], "v1.0-alpha1") {
			rest = rest[1:]
		}
		if len(rest) >= 2 {
			attrs = append(attrs, attribute.String(attrMsgSystem, "pubsub"), attribute.String(attrMsgDestination, strings.Join(rest[1:], "/")))
		}
	case "actors": // actors/{type}/{id}/method/{method} | actors/{type}/{id}/state...
		if len(seg) >= 5 {
			typeID := seg[2] + "." + seg[3]
			attrs = append(attrs, attribute.String(attrDaprActor, typeID))
			switch seg[4] {
			case "method":
				if len(seg) >= 6 {
					attrs = append(attrs, attribute.String(attrRPCService, "ServiceInvocation"), attribute.String(attrNetPeerName, typeID))
					return "CallActor/" + seg[2] + "/" + strings.Join(seg[5:], "/"), attrs
				}
			case "state":
				store("state", "actor")
			}
		}
	}
	return "", attrs
}

// spanAttributer is implemented by Dapr's generated request messages
// (runtimev1 dapr_tracing.go): the attributes daprd puts on their spans.
type spanAttributer interface {
	AppendSpanAttributes(rpcMethod string, m map[string]string)
}

// grpcSpanAttributes sets daprd's attributes on a gRPC API span, renaming it
// when the request says so (InvokeService → CallLocal/{id}/{method}).
func grpcSpanAttributes(ctx context.Context, span trace.Span, req any, fullMethod string) {
	m := make(map[string]string, 8)
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for k, v := range md {
			if len(v) > 0 && strings.HasPrefix(k, "dapr-") && !strings.HasSuffix(k, "-bin") && k != APITokenHeader {
				m[k] = v[0]
			}
		}
	}
	if a, ok := req.(spanAttributer); ok {
		a.AppendSpanAttributes(fullMethod, m)
	}
	m[attrDaprProtocol] = "grpc"
	m[attrDaprAPI] = fullMethod
	if name := m[daprSpanNameKey]; name != "" {
		span.SetName(name)
	}
	attrs := make([]attribute.KeyValue, 0, len(m))
	for k, v := range m {
		if v != "" && !strings.HasPrefix(k, daprInternalPrefix) {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	span.SetAttributes(attrs...)
}
