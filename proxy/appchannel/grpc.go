package appchannel

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

// GRPCChannel calls a gRPC app through AppCallback.OnInvoke. Its connection is
// also what gRPC proxy mode uses to reach the app (Conn).
type GRPCChannel struct {
	conn     *grpc.ClientConn
	client   runtimev1.AppCallbackClient
	appToken string
}

// NewGRPC dials (lazily) the gRPC app at addr.
func NewGRPC(addr, appToken string) (*GRPCChannel, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("appchannel: dial gRPC app %s: %w", addr, err)
	}
	return &GRPCChannel{conn: conn, client: runtimev1.NewAppCallbackClient(conn), appToken: appToken}, nil
}

// Conn is the connection to the app.
func (c *GRPCChannel) Conn() *grpc.ClientConn { return c.conn }

// OutgoingContext returns ctx carrying md (may be nil) as its outgoing
// metadata, with the app token (APP_API_TOKEN) set and no other token.
func (c *GRPCChannel) OutgoingContext(ctx context.Context, md metadata.MD) context.Context {
	if md == nil {
		md = metadata.MD{}
	}
	delete(md, "dapr-api-token")
	if c.appToken != "" {
		md.Set("dapr-api-token", c.appToken)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// Invoke calls OnInvoke; the body is read whole (gRPC messages are whole).
func (c *GRPCChannel) Invoke(ctx context.Context, req *Request) (*Response, error) {
	var data []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, fmt.Errorf("appchannel: read request body: %w", err)
		}
		data = b
	}
	verb := strings.ToUpper(req.Verb)
	if verb == "" {
		verb = http.MethodPost
	}
	ir := &commonv1.InvokeRequest{
		Method:      strings.TrimPrefix(req.Method, "/"),
		Data:        &anypb.Any{Value: data},
		ContentType: req.Header.Get("Content-Type"),
		HttpExtension: &commonv1.HTTPExtension{
			Verb:        commonv1.HTTPExtension_Verb(commonv1.HTTPExtension_Verb_value[verb]),
			Querystring: req.Query,
		},
	}
	md := metadata.MD{}
	for k, vs := range req.Header {
		lk := strings.ToLower(k)
		if lk == "content-type" || lk == "content-length" || lk == "host" || strings.HasPrefix(lk, ":") || strings.HasPrefix(lk, "grpc-") {
			continue
		}
		md[lk] = vs
	}
	ctx = c.OutgoingContext(ctx, md)
	var header metadata.MD
	resp, err := c.client.OnInvoke(ctx, ir, grpc.Header(&header))
	h := http.Header{}
	for k, vs := range header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if err != nil {
		st, ok := status.FromError(err)
		if !ok || st.Code() == codes.Unavailable && strings.Contains(st.Message(), "connection") {
			return nil, fmt.Errorf("appchannel: call gRPC app: %w", err)
		}
		h.Set("Content-Type", "application/json")
		body := fmt.Sprintf(`{"code":%d,"message":%q,"details":[]}`, st.Code(), st.Message())
		return &Response{Status: HTTPStatusFromCode(st.Code()), Header: h, Body: io.NopCloser(strings.NewReader(body)),
			GRPCCode: st.Code(), GRPCMessage: st.Message()}, nil
	}
	var out []byte
	if resp.GetData() != nil {
		out = resp.GetData().GetValue()
	}
	if ct := resp.GetContentType(); ct != "" {
		h.Set("Content-Type", ct)
	}
	return &Response{Status: http.StatusOK, Header: h, Body: io.NopCloser(bytes.NewReader(out))}, nil
}

// Close closes the connection.
func (c *GRPCChannel) Close() error { return c.conn.Close() }

// HTTPStatusFromCode is grpc-gateway's mapping of gRPC codes to HTTP statuses,
// which Dapr uses when a gRPC app answers an HTTP caller with an error.
func HTTPStatusFromCode(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.Unknown, codes.Internal, codes.DataLoss:
		return http.StatusInternalServerError
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// CodeFromHTTPStatus is Dapr's mapping of an HTTP app's status to a gRPC code
// for InvokeService callers.
func CodeFromHTTPStatus(s int) codes.Code {
	switch {
	case s >= 200 && s < 300:
		return codes.OK
	}
	switch s {
	case 400:
		return codes.Internal
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 404:
		return codes.NotFound
	case 408:
		return codes.Canceled
	case 409:
		return codes.AlreadyExists
	case 429:
		return codes.ResourceExhausted
	case 500:
		return codes.Unknown
	case 501:
		return codes.Unimplemented
	case 503:
		return codes.Unavailable
	case 504:
		return codes.DeadlineExceeded
	}
	return codes.Unknown
}
