package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestGRPCProxy calls A's gRPC API port with metadata dapr-app-id: b on
// services A does not serve; A proxies the raw calls through B's sidecar to
// gRPC app B (--app-protocol grpc). A is token-protected and B has an app
// token, so the test also checks which tokens reach the app.
func TestGRPCProxy(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	appPort, hs := startGRPCApp(t, "grpc-b")
	sa := c.start(sidecarOpts{appID: "a", env: []string{"DAPR_API_TOKEN=secret"}})
	c.start(sidecarOpts{appID: "b", appPort: appPort, appProtocol: "grpc", env: []string{"APP_API_TOKEN=apptoken"}})
	cc := dial(t, sa.GRPCAddr())
	waitGRPCProxy(t, cc, "b", "dapr-api-token", "secret")
	tc := testpb.NewTestServiceClient(cc)
	auth := []string{"dapr-app-id", "b", "dapr-api-token", "secret"}

	t.Run("unary", func(t *testing.T) {
		t.Parallel()
		var hdr, trl metadata.MD
		ctx := withMD(t, append(auth, "x-custom", "v1")...)
		resp, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("order 7")}},
			grpc.Header(&hdr), grpc.Trailer(&trl))
		if err != nil {
			t.Fatalf("UnaryCall via A: %v", err)
		}
		if resp.GetHostname() != "grpc-b" || string(resp.GetPayload().GetBody()) != "order 7" {
			t.Errorf("answer from %q with payload %q, want grpc-b echoing %q", resp.GetHostname(), resp.GetPayload().GetBody(), "order 7")
		}
		if got := hdr.Get("x-app-header"); len(got) != 1 || got[0] != "grpc-b" {
			t.Errorf("response header x-app-header = %q, want [grpc-b]; headers %v", got, hdr)
		}
		if got := trl.Get("x-app-trailer"); len(got) != 1 || got[0] != "done" {
			t.Errorf("trailer x-app-trailer = %q, want [done]; trailers %v", got, trl)
		}
		var seen metadata.MD
		if err := json.Unmarshal([]byte(resp.GetUsername()), &seen); err != nil {
			t.Fatalf("app's metadata report %q: %v", resp.GetUsername(), err)
		}
		if got := seen.Get("x-custom"); len(got) != 1 || got[0] != "v1" {
			t.Errorf("app saw x-custom %q, want [v1]", got)
		}
		if got := seen.Get("dapr-api-token"); len(got) != 1 || got[0] != "apptoken" {
			// Regression guard: proxy/invoke/proxy.go once replaced the app token with
			// metadata.NewOutgoingContext after ProxyApp.OutgoingContext had added it.
			t.Errorf("app saw dapr-api-token %q, want exactly [apptoken] (APP_API_TOKEN of B, never A's DAPR_API_TOKEN)", got)
		}
		if got := seen.Get("dapr-caller-app-id"); len(got) != 1 || got[0] != "a" {
			t.Errorf("app saw dapr-caller-app-id %q, want [a]", got)
		}
		if got := seen.Get("dapr-callee-app-id"); len(got) != 1 || got[0] != "b" {
			t.Errorf("app saw dapr-callee-app-id %q, want [b]", got)
		}
	})

	t.Run("app error status", func(t *testing.T) {
		t.Parallel()
		_, err := tc.UnaryCall(withMD(t, auth...), &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such order"}})
		if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such order" {
			t.Errorf("app answered NotFound \"no such order\"; caller got %v %q", st.Code(), st.Message())
		}
	})

	t.Run("server streaming", func(t *testing.T) {
		t.Parallel()
		sizes := []int32{1, 10, 1000, 100000, 0, 7}
		req := &testpb.StreamingOutputCallRequest{}
		for _, s := range sizes {
			req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: s})
		}
		st, err := tc.StreamingOutputCall(withMD(t, append(auth, "dapr-stream", "true")...), req)
		if err != nil {
			t.Fatalf("StreamingOutputCall: %v", err)
		}
		var got []int32
		for {
			m, err := st.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("StreamingOutputCall after %d messages: %v", len(got), err)
			}
			got = append(got, int32(len(m.GetPayload().GetBody())))
		}
		if len(got) != len(sizes) {
			t.Fatalf("received message sizes %v, want %v", got, sizes)
		}
		for i := range sizes {
			if got[i] != sizes[i] {
				t.Errorf("received message sizes %v, want %v", got, sizes)
				break
			}
		}
	})

	t.Run("server streaming error after messages", func(t *testing.T) {
		t.Parallel()
		req := &testpb.StreamingOutputCallRequest{
			ResponseParameters: []*testpb.ResponseParameters{{Size: 3}, {Size: 4}},
			ResponseStatus:     &testpb.EchoStatus{Code: int32(codes.Aborted), Message: "stream aborted by app"},
		}
		st, err := tc.StreamingOutputCall(withMD(t, append(auth, "dapr-stream", "true")...), req)
		if err != nil {
			t.Fatalf("StreamingOutputCall: %v", err)
		}
		n := 0
		for {
			_, err = st.Recv()
			if err != nil {
				break
			}
			n++
		}
		if s := status.Convert(err); n != 2 || s.Code() != codes.Aborted || s.Message() != "stream aborted by app" {
			t.Errorf("got %d messages then %v %q; want 2 messages then Aborted \"stream aborted by app\"", n, s.Code(), s.Message())
		}
	})

	t.Run("client streaming", func(t *testing.T) {
		t.Parallel()
		st, err := tc.StreamingInputCall(withMD(t, append(auth, "dapr-stream", "true")...))
		if err != nil {
			t.Fatalf("StreamingInputCall: %v", err)
		}
		for _, n := range []int{5, 50, 500} {
			if err := st.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, n)}}); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		resp, err := st.CloseAndRecv()
		if err != nil || resp.GetAggregatedPayloadSize() != 555 {
			t.Errorf("StreamingInputCall: %v, aggregated %d, want 555", err, resp.GetAggregatedPayloadSize())
		}
	})

	t.Run("bidi ping-pong", func(t *testing.T) {
		t.Parallel()
		st, err := tc.FullDuplexCall(withMD(t, append(auth, "dapr-stream", "true")...))
		if err != nil {
			t.Fatalf("FullDuplexCall: %v", err)
		}
		// Each answer must arrive before the next request is sent: the proxy
		// may not buffer a stream.
		for i, word := range []string{"ping", "pong", "pang"} {
			if err := st.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(word)}}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			m, err := st.Recv()
			if err != nil || !bytes.Equal(m.GetPayload().GetBody(), []byte(word)) {
				t.Fatalf("echo %d: got %q, %v; want %q", i, m.GetPayload().GetBody(), err, word)
			}
		}
		st.CloseSend()
		if _, err := st.Recv(); err != io.EOF {
			t.Errorf("after CloseSend: %v, want io.EOF", err)
		}
	})

	t.Run("health check and watch", func(t *testing.T) {
		// Not parallel: it flips the app's "orders" health.
		hc := healthpb.NewHealthClient(cc)
		resp, err := hc.Check(withMD(t, auth...), &healthpb.HealthCheckRequest{Service: "orders"})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(orders): %v %v, want SERVING", resp, err)
		}
		_, err = hc.Check(withMD(t, auth...), &healthpb.HealthCheckRequest{Service: "nosuch"})
		if status.Code(err) != codes.NotFound {
			t.Errorf("Check(nosuch): %v, want the app's NotFound", err)
		}
		w, err := hc.Watch(withMD(t, append(auth, "dapr-stream", "true")...), &healthpb.HealthCheckRequest{Service: "orders"})
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		m, err := w.Recv()
		if err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Watch first message: %v %v, want SERVING", m, err)
		}
		hs.SetServingStatus("orders", healthpb.HealthCheckResponse_NOT_SERVING)
		defer hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
		got := make(chan *healthpb.HealthCheckResponse, 1)
		go func() { m, _ := w.Recv(); got <- m }()
		select {
		case m := <-got:
			if m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Errorf("Watch second message: %v, want NOT_SERVING", m)
			}
		case <-time.After(5 * time.Second):
			t.Error("Watch: the NOT_SERVING update did not arrive within 5 s (stream buffered?)")
		}
	})

	t.Run("token required", func(t *testing.T) {
		t.Parallel()
		for _, kv := range [][]string{{"dapr-app-id", "b"}, {"dapr-app-id", "b", "dapr-api-token", "wrong"}} {
			_, err := tc.UnaryCall(withMD(t, kv...), &testpb.SimpleRequest{})
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("proxied call with metadata %v: %v, want Unauthenticated", kv, err)
			}
		}
	})

	t.Run("unknown target app", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		_, err := tc.UnaryCall(withMD(t, "dapr-app-id", "nosuchapp", "dapr-api-token", "secret"), &testpb.SimpleRequest{})
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("proxy to unknown app took %v, want < 2 s", took)
		}
		if err == nil || !strings.Contains(status.Convert(err).Message(), "nosuchapp") {
			t.Errorf("proxy to unknown app: %v, want an error naming nosuchapp", err)
		}
	})
}
