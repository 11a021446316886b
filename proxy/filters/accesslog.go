package filters

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/pipeline"
)

// AccessLog logs one line per API call (daprd's --enable-api-logging). Health
// checks are omitted when omitHealth is set.
func AccessLog(log *slog.Logger, omitHealth bool) pipeline.Filter {
	return pipeline.Filter{
		Name: "accesslog",
		HTTP: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if omitHealth && len(r.URL.Path) >= 12 && r.URL.Path[:12] == "/v1.0/health" {
					next.ServeHTTP(w, r)
					return
				}
				start := time.Now()
				sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
				next.ServeHTTP(sw, r)
				log.Info("HTTP API called", "method", r.Method, "path", r.URL.Path, "code", sw.status,
					"duration", time.Since(start).Milliseconds(), "useragent", r.UserAgent())
			})
		},
		Unary: func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			start := time.Now()
			resp, err := h(ctx, req)
			log.Info("gRPC API called", "method", info.FullMethod, "code", status.Code(err).String(), "duration", time.Since(start).Milliseconds())
			return resp, err
		},
		Stream: func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			start := time.Now()
			err := h(srv, ss)
			log.Info("gRPC API stream ended", "method", info.FullMethod, "code", status.Code(err).String(), "duration", time.Since(start).Milliseconds())
			return err
		},
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
