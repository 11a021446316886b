package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dapr/go-sdk/client"
	"github.com/dapr/go-sdk/service/common"
	daprd "github.com/dapr/go-sdk/service/grpc"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// sdkEcho is what the Go SDK service app answers: what its handler saw.
type sdkEcho struct {
	App         string `json:"app"`
	Data        string `json:"data"`
	ContentType string `json:"contentType"`
	Verb        string `json:"verb"`
	Query       string `json:"query"`
}

// startSDKApp serves a gRPC app built with the Go SDK's service package:
// "echo" answers an sdkEcho, "fail" returns an error.
func startSDKApp(t *testing.T, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sdk app: listen: %v", err)
	}
	s := daprd.NewServiceWithListener(ln)
	echo := func(_ context.Context, in *common.InvocationEvent) (*common.Content, error) {
		b, _ := json.Marshal(sdkEcho{App: name, Data: string(in.Data), ContentType: in.ContentType, Verb: in.Verb, Query: in.QueryString})
		return &common.Content{Data: b, ContentType: "application/json"}, nil
	}
	err = s.AddServiceInvocationHandler("echo", echo)
	if err == nil {
		err = s.AddServiceInvocationHandler("ping", echo) // what waitInvoke calls
	}
	if err == nil {
		err = s.AddServiceInvocationHandler("fail", func(context.Context, *common.InvocationEvent) (*common.Content, error) {
			return nil, errors.New("order rejected by sdk app")
		})
	}
	if err != nil {
		t.Fatalf("sdk app: add handler: %v", err)
	}
	go s.Start()
	t.Cleanup(func() { s.Stop() })
	return ln.Addr().(*net.TCPAddr).Port
}

// TestGoSDK uses the official Dapr Go SDK as a client of sidecar A (calling an
// HTTP app b and an SDK-built gRPC app g), and calls g over HTTP as well.
func TestGoSDK(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	appB := startHTTPApp(t, "app-b")
	gPort := startSDKApp(t, "sdk-g")
	sa := c.start(sidecarOpts{appID: "a"})
	c.start(sidecarOpts{appID: "b", appPort: appB.port})
	c.start(sidecarOpts{appID: "g", appPort: gPort, appProtocol: "grpc"})
	waitInvoke(t, sa, "b", "app-b")
	waitInvoke(t, sa, "g", "sdk-g")

	dc, err := client.NewClientWithAddress(sa.GRPCAddr())
	if err != nil {
		t.Fatalf("SDK client: %v", err)
	}
	t.Cleanup(dc.Close)
	ctx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("client to HTTP app: InvokeMethodWithContent", func(t *testing.T) {
		t.Parallel()
		out, err := dc.InvokeMethodWithContent(ctx(t), "b", "process", "post",
			&client.DataContent{ContentType: "application/json", Data: []byte(`{"order":1}`)})
		if err != nil {
			t.Fatalf("InvokeMethodWithContent: %v", err)
		}
		var e echoReply
		if err := json.Unmarshal(out, &e); err != nil {
			t.Fatalf("answer %q: %v", out, err)
		}
		if e.App != "app-b" || e.Method != http.MethodPost || e.Path != "/process" || e.Body != `{"order":1}` ||
			e.Header.Get("Content-Type") != "application/json" {
			t.Errorf("app saw %s %s body %q Content-Type %q (app %q); want POST /process {\"order\":1} application/json at app-b",
				e.Method, e.Path, e.Body, e.Header.Get("Content-Type"), e.App)
		}
		if got := e.Header.Get("Dapr-Caller-App-Id"); got != "a" {
			t.Errorf("app saw dapr-caller-app-id %q, want a", got)
		}
	})

	t.Run("client to HTTP app: InvokeMethod GET with query", func(t *testing.T) {
		t.Parallel()
		out, err := dc.InvokeMethod(ctx(t), "b", "orders/7?expand=items&q=a%20b", "get")
		if err != nil {
			t.Fatalf("InvokeMethod: %v", err)
		}
		var e echoReply
		if err := json.Unmarshal(out, &e); err != nil {
			t.Fatalf("answer %q: %v", out, err)
		}
		if e.Method != http.MethodGet || e.Path != "/orders/7" || e.RawQuery != "expand=items&q=a%20b" {
			t.Errorf("app saw %s %s?%s, want GET /orders/7?expand=items&q=a%%20b", e.Method, e.Path, e.RawQuery)
		}
	})

	t.Run("client to HTTP app: error status surfaces", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			code int
			want codes.Code // Dapr's CodeFromHTTPStatus
		}{{404, codes.NotFound}, {500, codes.Unknown}, {400, codes.Internal}, {503, codes.Unavailable}} {
			out, err := dc.InvokeMethodWithContent(ctx(t), "b", "status/"+strconv.Itoa(tc.code), "post",
				&client.DataContent{ContentType: "application/json", Data: []byte("{}")})
			if err == nil {
				t.Errorf("app answered %d; SDK returned no error (out %q)", tc.code, out)
				continue
			}
			st := status.Convert(err)
			if st.Code() != tc.want {
				t.Errorf("app answered %d; SDK error code %v, want %v (%v)", tc.code, st.Code(), tc.want, err)
			}
			var info *errdetails.ErrorInfo
			for _, d := range st.Details() {
				if i, ok := d.(*errdetails.ErrorInfo); ok {
					info = i
				}
			}
			if info == nil || info.GetMetadata()["http.code"] != strconv.Itoa(tc.code) ||
				info.GetMetadata()["http.error_message"] != "app app-b says "+strconv.Itoa(tc.code) {
				t.Errorf("app answered %d; error details %v, want ErrorInfo with http.code and the app's body", tc.code, st.Details())
			}
		}
	})

	t.Run("client to SDK gRPC app", func(t *testing.T) {
		t.Parallel()
		out, err := dc.InvokeMethodWithContent(ctx(t), "g", "echo?x=1", "post",
			&client.DataContent{ContentType: "text/plain", Data: []byte("hello g")})
		if err != nil {
			t.Fatalf("InvokeMethodWithContent(g): %v", err)
		}
		var e sdkEcho
		if err := json.Unmarshal(out, &e); err != nil {
			t.Fatalf("answer %q: %v", out, err)
		}
		want := sdkEcho{App: "sdk-g", Data: "hello g", ContentType: "text/plain", Verb: "POST", Query: "x=1"}
		if e != want {
			t.Errorf("SDK app saw %+v, want %+v", e, want)
		}
		_, err = dc.InvokeMethodWithContent(ctx(t), "g", "fail", "post", &client.DataContent{ContentType: "text/plain", Data: []byte("x")})
		if err == nil || !strings.Contains(err.Error(), "order rejected by sdk app") {
			t.Errorf("handler error: SDK client got %v, want the app's error \"order rejected by sdk app\"", err)
		}
	})

	t.Run("HTTP to SDK gRPC app", func(t *testing.T) {
		t.Parallel()
		r := call(t, http.MethodPut, sa.URL("/v1.0/invoke/g/method/echo?x=1&y=2"), http.Header{"Content-Type": {"application/json"}}, []byte(`{"k":"v"}`))
		if r.status != http.StatusOK {
			t.Fatalf("PUT invoke g/echo: %d %q, want 200", r.status, r.body)
		}
		var e sdkEcho
		if err := json.Unmarshal(r.body, &e); err != nil {
			t.Fatalf("answer %q: %v", r.body, err)
		}
		want := sdkEcho{App: "sdk-g", Data: `{"k":"v"}`, ContentType: "application/json", Verb: "PUT", Query: "x=1&y=2"}
		if e != want {
			t.Errorf("SDK app saw %+v, want %+v", e, want)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want the app's application/json", ct)
		}
		r = call(t, http.MethodPost, sa.URL("/v1.0/invoke/g/method/fail"), nil, []byte("x"))
		if r.status != http.StatusInternalServerError || !strings.Contains(string(r.body), "order rejected by sdk app") {
			t.Errorf("handler error over HTTP: %d %q, want 500 with the app's message (gRPC Unknown mapped to HTTP)", r.status, r.body)
		}
	})
}
