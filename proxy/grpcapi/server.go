package grpcapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/invoke"
	mdstore "github.com/outrigger/outrigger/proxy/metadata"
)

// StateServer is the state building block's part of the Dapr service.
type StateServer interface {
	GetState(context.Context, *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error)
	GetBulkState(context.Context, *runtimev1.GetBulkStateRequest) (*runtimev1.GetBulkStateResponse, error)
	SaveState(context.Context, *runtimev1.SaveStateRequest) (*emptypb.Empty, error)
	QueryStateAlpha1(context.Context, *runtimev1.QueryStateRequest) (*runtimev1.QueryStateResponse, error)
	DeleteState(context.Context, *runtimev1.DeleteStateRequest) (*emptypb.Empty, error)
	DeleteBulkState(context.Context, *runtimev1.DeleteBulkStateRequest) (*emptypb.Empty, error)
	ExecuteStateTransaction(context.Context, *runtimev1.ExecuteStateTransactionRequest) (*emptypb.Empty, error)
}

// SecretsServer is the secrets building block's part of the Dapr service.
type SecretsServer interface {
	GetSecret(context.Context, *runtimev1.GetSecretRequest) (*runtimev1.GetSecretResponse, error)
	GetBulkSecret(context.Context, *runtimev1.GetBulkSecretRequest) (*runtimev1.GetBulkSecretResponse, error)
}

// PubSubServer is the pub/sub building block's part of the Dapr service.
type PubSubServer interface {
	PublishEvent(context.Context, *runtimev1.PublishEventRequest) (*emptypb.Empty, error)
	BulkPublishEventAlpha1(context.Context, *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error)
	SubscribeTopicEventsAlpha1(runtimev1.Dapr_SubscribeTopicEventsAlpha1Server) error
}

// LockServer is the distributed lock building block's part of the Dapr service.
type LockServer interface {
	TryLockAlpha1(context.Context, *runtimev1.TryLockRequest) (*runtimev1.TryLockResponse, error)
	UnlockAlpha1(context.Context, *runtimev1.UnlockRequest) (*runtimev1.UnlockResponse, error)
}

// ConfigurationServer is the configuration building block's part of the Dapr service.
type ConfigurationServer interface {
	GetConfiguration(context.Context, *runtimev1.GetConfigurationRequest) (*runtimev1.GetConfigurationResponse, error)
	GetConfigurationAlpha1(context.Context, *runtimev1.GetConfigurationRequest) (*runtimev1.GetConfigurationResponse, error)
	SubscribeConfiguration(*runtimev1.SubscribeConfigurationRequest, runtimev1.Dapr_SubscribeConfigurationServer) error
	SubscribeConfigurationAlpha1(*runtimev1.SubscribeConfigurationRequest, runtimev1.Dapr_SubscribeConfigurationAlpha1Server) error
	UnsubscribeConfiguration(context.Context, *runtimev1.UnsubscribeConfigurationRequest) (*runtimev1.UnsubscribeConfigurationResponse, error)
	UnsubscribeConfigurationAlpha1(context.Context, *runtimev1.UnsubscribeConfigurationRequest) (*runtimev1.UnsubscribeConfigurationResponse, error)
}

// BindingsServer is the bindings building block's part of the Dapr service.
type BindingsServer interface {
	InvokeBinding(context.Context, *runtimev1.InvokeBindingRequest) (*runtimev1.InvokeBindingResponse, error)
}

// Blocks are the building blocks' gRPC parts; a nil one answers Unimplemented.
type Blocks struct {
	Bindings      BindingsServer
	State         StateServer
	Secrets       SecretsServer
	PubSub        PubSubServer
	Lock          LockServer
	Configuration ConfigurationServer
}

// Config configures the server.
type Config struct {
	Invoke   *invoke.Service
	Metadata *mdstore.Store
	Shutdown func()
	Blocks   Blocks
	Options  []grpc.ServerOption // the pipeline's interceptors
}

type unimplemented struct {
	runtimev1.UnimplementedDaprServer
}

// daprServer composes the Dapr service from its parts.
type daprServer struct {
	*core
	StateServer
	SecretsServer
	PubSubServer
	LockServer
	ConfigurationServer
	BindingsServer
	unimplemented
}

// New returns a gRPC server serving the Dapr API (and reflection).
func New(cfg Config) *grpc.Server {
	opts := append([]grpc.ServerOption{
		grpc.UnknownServiceHandler(cfg.Invoke.ProxyHandler),
		grpc.ForceServerCodec(invoke.RawCodec{}),
		grpc.MaxRecvMsgSize(64 << 20),
		grpc.MaxSendMsgSize(64 << 20),
	}, cfg.Options...)
	s := grpc.NewServer(opts...)
	ds := &daprServer{core: &core{invoke: cfg.Invoke, md: cfg.Metadata, shutdown: cfg.Shutdown},
		StateServer: or[StateServer](cfg.Blocks.State), SecretsServer: or[SecretsServer](cfg.Blocks.Secrets),
		PubSubServer: or[PubSubServer](cfg.Blocks.PubSub), LockServer: or[LockServer](cfg.Blocks.Lock),
		ConfigurationServer: or[ConfigurationServer](cfg.Blocks.Configuration),
		BindingsServer:      or[BindingsServer](cfg.Blocks.Bindings)}
	runtimev1.RegisterDaprServer(s, ds)
	reflection.Register(s)
	return s
}

// or returns b, or the generated Unimplemented server when b is nil, so an
// absent block answers Unimplemented naming the method.
func or[T any](b T) T {
	if any(b) == nil {
		var u any = runtimev1.UnimplementedDaprServer{}
		return u.(T)
	}
	return b
}

type core struct {
	invoke   *invoke.Service
	md       *mdstore.Store
	shutdown func()
}

// InvokeService is the (deprecated, but used by the Go SDK) invocation RPC.
func (c *core) InvokeService(ctx context.Context, in *runtimev1.InvokeServiceRequest) (*commonv1.InvokeResponse, error) {
	msg := in.GetMessage()
	if msg == nil {
		return nil, status.Error(codes.InvalidArgument, "invoke request has no message")
	}
	verb, query := http.MethodPost, ""
	if ext := msg.GetHttpExtension(); ext != nil {
		if ext.GetVerb() != commonv1.HTTPExtension_NONE {
			verb = ext.GetVerb().String()
		}
		query = ext.GetQuerystring()
	}
	h := http.Header{}
	md, _ := metadata.FromIncomingContext(ctx)
	for k, vs := range md {
		if strings.HasPrefix(k, ":") || strings.HasPrefix(k, "grpc-") || k == "content-type" || k == "dapr-api-token" || k == "user-agent" {
			continue
		}
		h[http.CanonicalHeaderKey(k)] = vs
	}
	if ct := msg.GetContentType(); ct != "" {
		h.Set("Content-Type", ct)
	}
	data := msg.GetData().GetValue()
	req := &appchannel.Request{Method: msg.GetMethod(), Verb: verb, Query: query, Header: h, Body: bytes.NewReader(data), ContentLength: int64(len(data))}
	resp, err := c.invoke.Invoke(ctx, in.GetId(), req, invoke.Caller{})
	if err != nil {
		return nil, errs.GRPC(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "failed to invoke, id: %s, err: reading response: %v", in.GetId(), err)
	}
	hdr := metadata.MD{"dapr-http-status": []string{strconv.Itoa(resp.Status)}}
	for k, vs := range resp.Header {
		lk := strings.ToLower(k)
		if lk == "content-length" || lk == "connection" || lk == "transfer-encoding" {
			continue
		}
		hdr[lk] = vs
	}
	_ = grpc.SetHeader(ctx, hdr)
	if resp.GRPCCode != codes.OK {
		return nil, status.Error(resp.GRPCCode, resp.GRPCMessage)
	}
	if resp.Status < 200 || resp.Status > 299 {
		return nil, httpError(resp.Status, body)
	}
	return &commonv1.InvokeResponse{Data: &anypb.Any{Value: body}, ContentType: resp.Header.Get("Content-Type")}, nil
}

// httpError is how Dapr reports an HTTP app's non-2xx answer to a gRPC caller.
func httpError(code int, body []byte) error {
	msg := string(body)
	if len(msg) > 63 {
		msg = msg[:63]
	}
	st := status.New(appchannel.CodeFromHTTPStatus(code), http.StatusText(code))
	if d, err := st.WithDetails(&errdetails.ErrorInfo{
		Domain: "dapr.io", Reason: http.StatusText(code),
		Metadata: map[string]string{"http.code": strconv.Itoa(code), "http.error_message": msg},
	}); err == nil {
		st = d
	}
	return st.Err()
}

func (c *core) GetMetadata(context.Context, *runtimev1.GetMetadataRequest) (*runtimev1.GetMetadataResponse, error) {
	return c.md.Response(), nil
}

func (c *core) SetMetadata(_ context.Context, in *runtimev1.SetMetadataRequest) (*emptypb.Empty, error) {
	c.md.Set(in.GetKey(), in.GetValue())
	return &emptypb.Empty{}, nil
}

func (c *core) Shutdown(context.Context, *runtimev1.ShutdownRequest) (*emptypb.Empty, error) {
	if c.shutdown != nil {
		go c.shutdown()
	}
	return &emptypb.Empty{}, nil
}
