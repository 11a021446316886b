package filters

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/pipeline"
)

// Recover turns a panic into a 500 ERROR (HTTP) or Internal (gRPC) and logs it.
func Recover(log *slog.Logger) pipeline.Filter {
	return pipeline.Filter{
		Name: "recover",
		HTTP: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() {
					if v := recover(); v != nil {
						if v == http.ErrAbortHandler {
							panic(v)
						}
						log.Error("panic serving request", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
						errs.WriteHTTP(w, errs.Internal.New(fmt.Sprintf("internal error: %v", v)))
					}
				}()
				next.ServeHTTP(w, r)
			})
		},
		Unary: func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
			defer func() {
				if v := recover(); v != nil {
					log.Error("panic serving gRPC call", "method", info.FullMethod, "panic", v, "stack", string(debug.Stack()))
					err = status.Errorf(codes.Internal, "internal error: %v", v)
				}
			}()
			return h(ctx, req)
		},
		Stream: func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
			defer func() {
				if v := recover(); v != nil {
					log.Error("panic serving gRPC stream", "method", info.FullMethod, "panic", v, "stack", string(debug.Stack()))
					err = status.Errorf(codes.Internal, "internal error: %v", v)
				}
			}()
			return h(srv, ss)
		},
	}
}
