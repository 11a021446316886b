package filters

import (
	"context"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/pipeline"
	"github.com/outrigger/outrigger/proxy/telemetry"
)

// Metrics records every API call, as daprd does: HTTP calls in
// dapr_http_server_request_count / _latency / _request_bytes /
// _response_bytes (method, path after spec.metrics.http, status), gRPC calls
// in dapr_grpc_io_server_completed_rpcs / _server_latency (full method,
// status code). It sits inside the tracing span and outside auth, so denied
// calls are counted too. With metrics off (m nil or disabled) the filter has
// no HTTP or gRPC form: it costs nothing.
func Metrics(m *telemetry.Metrics) pipeline.Filter {
	f := pipeline.Filter{Name: "metrics"}
	if !m.Enabled() {
		return f
	}
	f.HTTP = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			method, path, reqBytes := r.Method, r.URL.Path, r.ContentLength
			mw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
			start := time.Now()
			next.ServeHTTP(mw, r)
			m.RecordHTTPServer(method, path, mw.status, reqBytes, mw.bytes, time.Since(start))
		})
	}
	f.Unary = func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		m.RecordGRPCServer(info.FullMethod, status.Code(err), time.Since(start))
		return resp, err
	}
	f.Stream = func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		m.RecordGRPCServer(info.FullMethod, status.Code(err), time.Since(start))
		return err
	}
	return f
}

// countingWriter remembers the status and counts the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *countingWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
