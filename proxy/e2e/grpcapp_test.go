package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcTestApp implements grpc.testing.TestService for the proxy tests. Every
// answer reports what the app saw: Hostname is the app's name, Username the
// incoming metadata as JSON.
type grpcTestApp struct {
	testpb.UnimplementedTestServiceServer
	name string
}

func mdJSON(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	b, _ := json.Marshal(md)
	return string(b)
}

func (a *grpcTestApp) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-app-header", a.name))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-app-trailer", "done"))
	if st := in.GetResponseStatus(); st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{Payload: in.GetPayload(), Hostname: a.name, Username: mdJSON(ctx)}, nil
}

func (a *grpcTestApp) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, ss grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	for _, p := range in.GetResponseParameters() {
		if d := time.Duration(p.GetIntervalUs()) * time.Microsecond; d > 0 {
			time.Sleep(d) // the test asks for a paced stream
		}
		body := make([]byte, p.GetSize())
		for i := range body {
			body[i] = byte(i)
		}
		if err := ss.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	if st := in.GetResponseStatus(); st.GetCode() != 0 {
		return status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return nil
}

// FullDuplexCall echoes each request's payload as soon as it arrives.
func (a *grpcTestApp) FullDuplexCall(ss grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	for {
		in, err := ss.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ss.Send(&testpb.StreamingOutputCallResponse{Payload: in.GetPayload()}); err != nil {
			return err
		}
	}
}

// StreamingInputCall sums the sizes of the payloads the client streamed.
func (a *grpcTestApp) StreamingInputCall(ss grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	var n int32
	for {
		in, err := ss.Recv()
		if err == io.EOF {
			return ss.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: n})
		}
		if err != nil {
			return err
		}
		n += int32(len(in.GetPayload().GetBody()))
	}
}

// startGRPCApp serves the test service and grpc health on a free port.
func startGRPCApp(t *testing.T, name string) (port int, hs *health.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("grpc app %s: listen: %v", name, err)
	}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, &grpcTestApp{name: name})
	hs = health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().(*net.TCPAddr).Port, hs
}

// dial opens a gRPC client connection to addr, closed at test end.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// withMD returns a 20 s context carrying outgoing metadata kv.
func withMD(t *testing.T, kv ...string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// waitGRPCProxy polls a proxied health check through cc until app id target
// answers SERVING (gossip has converged).
func waitGRPCProxy(t *testing.T, cc *grpc.ClientConn, target string, kv ...string) {
	t.Helper()
	end := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ctx = metadata.AppendToOutgoingContext(ctx, append([]string{"dapr-app-id", target}, kv...)...)
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("proxied health check to %s did not succeed within 15 s: %v %v", target, resp, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}
