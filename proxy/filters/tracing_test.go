package filters_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/outrigger/outrigger/proxy/filters"
	"github.com/outrigger/outrigger/proxy/pipeline"
	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/telemetry"
	"github.com/outrigger/outrigger/proxy/telemetry/telemetrytest"
)

const (
	parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpan  = "00f067aa0ba902b7"
	parentTP    = "00-" + parentTrace + "-" + parentSpan + "-01"
)

func newTracing(t testing.TB, url, rate string) *telemetry.Tracing {
	t.Helper()
	spec := resources.TracingSpec{SamplingRate: rate}
	if url != "" {
		spec.Zipkin = &resources.ZipkinSpec{EndpointAddress: url}
	}
	tr, err := telemetry.NewTracing(context.Background(), spec, "app1", slog.New(slog.DiscardHandler),
		telemetry.WithGetenv(func(string) string { return "" }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// seen is what the terminal router observed of one request.
type seen struct {
	mu          sync.Mutex
	traceparent string
	span        trace.SpanContext
}

func (s *seen) get() (string, trace.SpanContext) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.traceparent, s.span
}

func httpChain(t testing.TB, router http.Handler, fs ...pipeline.Filter) *httptest.Server {
	t.Helper()
	c, err := pipeline.New(fs...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.HTTP(router))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestTracingHTTPInvocationSpanIsForwardedAndAnswered(t *testing.T) {
	zc := telemetrytest.NewCollector(t)
	tr := newTracing(t, zc.URL(), "1")
	var s seen
	router := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.traceparent = r.Header.Get("traceparent") // what invoke forwards to the next hop
		s.span = trace.SpanContextFromContext(r.Context())
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	})
	srv := httpChain(t, router, filters.Tracing(tr))

	resp := do(t, "POST", srv.URL+"/v1.0/invoke/app2/method/orders/1?x=1", map[string]string{
		"traceparent": parentTP, "tracestate": "v=1", "dapr-custom": "hello", "dapr-api-token": "secret"})
	fwd, sc := s.get()
	if sc.TraceID().String() != parentTrace || !sc.IsSampled() {
		t.Fatalf("span in context %v is not in the caller's trace", sc)
	}
	want := "00-" + parentTrace + "-" + sc.SpanID().String() + "-01"
	if fwd != want {
		t.Fatalf("forwarded traceparent %q, want the sidecar span %q", fwd, want)
	}
	if got := resp.Header.Get("traceparent"); got != want {
		t.Fatalf("response traceparent %q, want %q", got, want)
	}
	if got := resp.Header.Get("tracestate"); got != "v=1" {
		t.Fatalf("response tracestate %q", got)
	}

	span := waitSpan(t, tr, zc, func(z telemetrytest.Span) bool { return z.ID == sc.SpanID().String() })
	if span.Name != "calllocal/app2/orders/1" || span.ParentID != parentSpan || span.Kind != "CLIENT" {
		t.Fatalf("span %+v", span)
	}
	for k, v := range map[string]string{
		"rpc.service": "ServiceInvocation", "net.peer.name": "app2", "dapr.protocol": "http",
		"dapr.api": "POST /v1.0/invoke/app2/method/orders/1", "dapr.status_code": "201",
		"http.request.method": "POST", "url.full": "/v1.0/invoke/app2/method/orders/1?x=1", "dapr-custom": "hello",
	} {
		if span.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q (tags %v)", k, span.Tags[k], v, span.Tags)
		}
	}
	if _, leaked := span.Tags["dapr-api-token"]; leaked {
		t.Error("the API token became a span attribute")
	}
}

func TestTracingHTTPStateSpanErrorAndAppTraceparent(t *testing.T) {
	zc := telemetrytest.NewCollector(t)
	tr := newTracing(t, zc.URL(), "1")
	appTP := "00-11111111111111111111111111111111-2222222222222222-01"
	router := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1.0/invoke/") {
			w.Header().Set("traceparent", appTP) // the app's own response header
			_, _ = w.Write([]byte("ok"))
			return
		}
		http.Error(w, "no", http.StatusNotFound)
	})
	srv := httpChain(t, router, filters.Tracing(tr))

	if got := do(t, "GET", srv.URL+"/v1.0/invoke/app2/method/m", nil).Header.Get("traceparent"); got != appTP {
		t.Fatalf("the app's response traceparent was replaced: %q", got)
	}
	resp := do(t, "GET", srv.URL+"/v1.0/state/store1/key1", nil)
	sc, ok := telemetry.ParseTraceparent(resp.Header.Get("traceparent"))
	if !ok {
		t.Fatalf("no traceparent on the state response: %v", resp.Header)
	}
	span := waitSpan(t, tr, zc, func(z telemetrytest.Span) bool { return z.ID == sc.SpanID().String() })
	if span.Name != "/v1.0/state/store1/key1" || span.ParentID != "" {
		t.Fatalf("span %+v", span)
	}
	for k, v := range map[string]string{
		"db.system": "state", "db.name": "store1", "db.statement": "GET /v1.0/state/store1/key1",
		"db.connection_string": "state", "dapr.status_code": "404", "error": "Code(404): Not Found",
	} {
		if span.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q (tags %v)", k, span.Tags[k], v, span.Tags)
		}
	}
}

func TestTracingHTTPSkipsHealthChecks(t *testing.T) {
	zc := telemetrytest.NewCollector(t)
	tr := newTracing(t, zc.URL(), "1")
	var s seen
	router := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.traceparent, s.span = r.Header.Get("traceparent"), trace.SpanContextFromContext(r.Context())
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httpChain(t, router, filters.Tracing(tr))
	resp := do(t, "GET", srv.URL+"/v1.0/healthz", map[string]string{"traceparent": parentTP})
	if fwd, sc := s.get(); fwd != parentTP || sc.IsValid() && sc.SpanID().String() != parentSpan {
		t.Fatalf("health check traced: forwarded %q span %v", fwd, sc)
	}
	if resp.Header.Get("traceparent") != "" {
		t.Fatal("health check answered with a traceparent")
	}
}

func TestTracingAndMetricsOffHaveNoForms(t *testing.T) {
	m, err := telemetry.NewMetrics(prometheus.NewRegistry(), resources.MetricSpec{Enabled: new(bool)}, "a", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []pipeline.Filter{
		filters.Tracing(nil), filters.Tracing(newTracing(t, "", "0")), filters.Tracing(newTracing(t, "", "")),
		filters.Metrics(nil), filters.Metrics(m),
	} {
		if f.HTTP != nil || f.Unary != nil || f.Stream != nil {
			t.Errorf("%s: off but has forms", f.Name)
		}
		if f.Name != "tracing" && f.Name != "metrics" {
			t.Errorf("name %q", f.Name)
		}
	}
}

// fakeDapr is a real gRPC Dapr API server whose handlers record what they saw.
type fakeDapr struct {
	runtimev1.UnimplementedDaprServer
	mu sync.Mutex
	md metadata.MD
	sc trace.SpanContext
}

func (f *fakeDapr) note(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.md, f.sc = md, trace.SpanContextFromContext(ctx)
	f.mu.Unlock()
}

func (f *fakeDapr) InvokeService(ctx context.Context, _ *runtimev1.InvokeServiceRequest) (*commonv1.InvokeResponse, error) {
	f.note(ctx)
	return &commonv1.InvokeResponse{}, nil
}

func (f *fakeDapr) GetState(ctx context.Context, _ *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error) {
	f.note(ctx)
	return &runtimev1.GetStateResponse{}, nil
}

func grpcChain(t testing.TB, fs ...pipeline.Filter) (*fakeDapr, *grpc.ClientConn) {
	t.Helper()
	c, err := pipeline.New(fs...)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(c.GRPCOptions()...)
	fd := &fakeDapr{}
	runtimev1.RegisterDaprServer(s, fd)
	healthpb.RegisterHealthServer(s, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return fd, cc
}

func TestTracingGRPC(t *testing.T) {
	zc := telemetrytest.NewCollector(t)
	tr := newTracing(t, zc.URL(), "1")
	fd, cc := grpcChain(t, filters.Tracing(tr))
	client := runtimev1.NewDaprClient(cc)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", parentTP, "dapr-custom", "v")

	// InvokeService: the handler (which copies incoming metadata into the
	// forwarded request) sees the sidecar span; the response headers are
	// the app's, so no grpc-trace-bin is added.
	var hdr metadata.MD
	if _, err := client.InvokeService(ctx, &runtimev1.InvokeServiceRequest{Id: "app2", Message: &commonv1.InvokeRequest{Method: "neworder"}}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	fd.mu.Lock()
	md, sc := fd.md, fd.sc
	fd.mu.Unlock()
	want := "00-" + parentTrace + "-" + sc.SpanID().String() + "-01"
	if sc.TraceID().String() != parentTrace || md.Get("traceparent")[0] != want {
		t.Fatalf("handler saw span %v and traceparent %v, want %s", sc, md.Get("traceparent"), want)
	}
	if bin, ok := telemetry.SpanContextFromBinary([]byte(md.Get(telemetry.GRPCTraceBinKey)[0])); !ok || bin.SpanID() != sc.SpanID() {
		t.Fatalf("incoming grpc-trace-bin not rewritten: %v", bin)
	}
	if len(hdr.Get(telemetry.GRPCTraceBinKey)) != 0 {
		t.Fatal("InvokeService answered with grpc-trace-bin")
	}
	span := waitSpan(t, tr, zc, func(z telemetrytest.Span) bool { return z.ID == sc.SpanID().String() })
	if span.Name != "calllocal/app2/neworder" || span.ParentID != parentSpan || span.Kind != "CLIENT" ||
		span.Tags["rpc.service"] != "ServiceInvocation" || span.Tags["net.peer.name"] != "app2" ||
		span.Tags["dapr.api"] != "/dapr.proto.runtime.v1.Dapr/InvokeService" || span.Tags["dapr-custom"] != "v" {
		t.Fatalf("span %+v", span)
	}

	// Other APIs answer with grpc-trace-bin and carry daprd's attributes.
	hdr = nil
	if _, err := client.GetState(ctx, &runtimev1.GetStateRequest{StoreName: "store1", Key: "k"}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	v := hdr.Get(telemetry.GRPCTraceBinKey)
	if len(v) != 1 {
		t.Fatalf("GetState response headers %v lack grpc-trace-bin", hdr)
	}
	bin, ok := telemetry.SpanContextFromBinary([]byte(v[0]))
	if !ok || bin.TraceID().String() != parentTrace {
		t.Fatalf("grpc-trace-bin %v", bin)
	}
	span = waitSpan(t, tr, zc, func(z telemetrytest.Span) bool { return z.ID == bin.SpanID().String() })
	if span.Name != "/dapr.proto.runtime.v1.dapr/getstate" || span.Tags["db.system"] != "state" || span.Tags["db.name"] != "store1" {
		t.Fatalf("span %+v", span)
	}

	// A stream (here grpc health Watch) gets a span too, with the caller as parent.
	sctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), telemetry.GRPCTraceBinKey,
		string(telemetry.BinaryFromSpanContext(mustParse(t, parentTP)))))
	w, err := healthpb.NewHealthClient(cc).Watch(sctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	span = waitSpan(t, tr, zc, func(z telemetrytest.Span) bool { return z.Name == "/grpc.health.v1.health/watch" })
	if span.TraceID != parentTrace || span.ParentID != parentSpan {
		t.Fatalf("stream span %+v", span)
	}
}

func mustParse(t *testing.T, tp string) trace.SpanContext {
	t.Helper()
	sc, ok := telemetry.ParseTraceparent(tp)
	if !ok {
		t.Fatalf("bad traceparent %q", tp)
	}
	return sc
}

// waitSpan flushes the tracer until a matching span has arrived (spans
// ended asynchronously, e.g. a stream's, may need several flushes). Zipkin
// lowercases span names, as real Zipkin does.
func waitSpan(t *testing.T, tr *telemetry.Tracing, zc *telemetrytest.Collector, ok func(telemetrytest.Span) bool) telemetrytest.Span {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := tr.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, s := range zc.Spans() {
			if ok(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching span; received %+v", zc.Spans())
		}
		time.Sleep(10 * time.Millisecond) // the span ends on another goroutine; nothing to wait on
	}
}
