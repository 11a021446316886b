package filters

import (
	"context"
	"crypto/subtle"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/pipeline"
)

// APITokenHeader carries DAPR_API_TOKEN on HTTP and as gRPC metadata.
const APITokenHeader = "dapr-api-token"

// APIToken enforces DAPR_API_TOKEN: a call without the token gets 401 "invalid
// api token" (HTTP) or Unauthenticated (gRPC). The health endpoints are exempt.
// The token header is removed before the request goes further, so it is never
// forwarded to an app.
func APIToken(token string) pipeline.Filter {
	want := []byte(token)
	ok := func(got string) bool { return subtle.ConstantTimeCompare([]byte(got), want) == 1 }
	return pipeline.Filter{
		Name: "apitoken",
		HTTP: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && (r.URL.Path == "/v1.0/healthz" || r.URL.Path == "/v1.0/healthz/outbound") {
					next.ServeHTTP(w, r)
					return
				}
				if !ok(r.Header.Get(APITokenHeader)) {
					errs.WriteHTTP(w, errs.APIToken.New())
					return
				}
				r.Header.Del(APITokenHeader)
				next.ServeHTTP(w, r)
			})
		},
		Unary: func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if !grpcTokenOK(ctx, ok) {
				return nil, status.Error(codes.Unauthenticated, "authentication error: api token mismatch")
			}
			return h(ctx, req)
		},
		Stream: func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if !grpcTokenOK(ss.Context(), ok) {
				return status.Error(codes.Unauthenticated, "authentication error: api token mismatch")
			}
			return h(srv, ss)
		},
	}
}

func grpcTokenOK(ctx context.Context, ok func(string) bool) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(APITokenHeader)
	return len(v) == 1 && ok(v[0])
}
