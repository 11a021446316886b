package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestAPIToken runs sidecar A with DAPR_API_TOKEN=secret, B with
// APP_API_TOKEN=apptoken and C with neither, and checks what callers and apps see.
func TestAPIToken(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	appA, appB, appC := startHTTPApp(t, "app-a"), startHTTPApp(t, "app-b"), startHTTPApp(t, "app-c")
	sa := c.launch(sidecarOpts{appID: "a", appPort: appA.port, env: []string{"DAPR_API_TOKEN=secret"}})
	sa.WaitStatus(t, "/v1.0/healthz", http.StatusNoContent, 15*time.Second)
	sb := c.start(sidecarOpts{appID: "b", appPort: appB.port, env: []string{"APP_API_TOKEN=apptoken"}})
	c.start(sidecarOpts{appID: "c", appPort: appC.port})
	tok := http.Header{"Dapr-Api-Token": {"secret"}}
	waitInvokeWith(t, sa, tok, "b", "app-b")
	waitInvokeWith(t, sa, tok, "c", "app-c")

	t.Run("HTTP without a valid token is 401", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, method, path string
			hdr                http.Header
		}{
			{"invoke, no token", http.MethodPost, "/v1.0/invoke/c/method/x", nil},
			{"invoke, wrong token", http.MethodPost, "/v1.0/invoke/c/method/x", http.Header{"Dapr-Api-Token": {"Secret"}}},
			{"invoke by header, no token", http.MethodGet, "/x", http.Header{"Dapr-App-Id": {"c"}}},
			{"metadata, no token", http.MethodGet, "/v1.0/metadata", nil},
			{"shutdown, no token", http.MethodPost, "/v1.0/shutdown", nil},
			{"unknown route, no token", http.MethodGet, "/v1.0/nosuch", nil},
		} {
			r := call(t, tc.method, sa.URL(tc.path), tc.hdr, nil)
			if r.status != http.StatusUnauthorized || strings.TrimSpace(string(r.body)) != "invalid api token" {
				t.Errorf("%s: %d %q, want 401 \"invalid api token\"", tc.name, r.status, r.body)
			}
		}
		if sa.Exited() {
			t.Fatal("sidecar A exited: an unauthenticated shutdown was obeyed")
		}
	})

	t.Run("health endpoints are exempt", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/v1.0/healthz", "/v1.0/healthz/outbound"} {
			if r := call(t, http.MethodGet, sa.URL(p), nil, nil); r.status != http.StatusNoContent {
				t.Errorf("GET %s without token: %d %q, want 204", p, r.status, r.body)
			}
		}
	})

	t.Run("token is not forwarded to the app", func(t *testing.T) {
		t.Parallel()
		for _, hdr := range []http.Header{tok, {"Dapr-Api-Token": {"secret"}, "Dapr-App-Id": {"c"}}} {
			url := sa.URL("/v1.0/invoke/c/method/x")
			if hdr.Get("Dapr-App-Id") != "" {
				url = sa.URL("/x")
			}
			r := call(t, http.MethodPost, url, hdr, []byte("{}"))
			if r.status != http.StatusOK {
				t.Fatalf("POST %s with token: %d %q, want 200", url, r.status, r.body)
			}
			if e := decodeEcho(t, r); len(e.Header.Values("Dapr-Api-Token")) != 0 {
				t.Errorf("POST %s: app c saw dapr-api-token %q; the caller's token must never reach an app", url, e.Header.Values("Dapr-Api-Token"))
			}
		}
	})

	t.Run("APP_API_TOKEN is sent to the app", func(t *testing.T) {
		t.Parallel()
		e := decodeEcho(t, call(t, http.MethodPost, sa.URL("/v1.0/invoke/b/method/x"), tok, []byte("{}")))
		if got := e.Header.Values("Dapr-Api-Token"); len(got) != 1 || got[0] != "apptoken" {
			t.Errorf("app b saw dapr-api-token %q, want exactly [apptoken]", got)
		}
	})

	t.Run("inbound invocation needs no token", func(t *testing.T) {
		t.Parallel()
		// The token guards A's API, not calls from other sidecars to A's app.
		e := decodeEcho(t, call(t, http.MethodPost, sb.URL("/v1.0/invoke/a/method/x"), nil, []byte("{}")))
		if e.App != "app-a" {
			t.Errorf("B→a answered by %q, want app-a", e.App)
		}
	})

	t.Run("gRPC", func(t *testing.T) {
		t.Parallel()
		dc := runtimev1.NewDaprClient(dial(t, sa.GRPCAddr()))
		_, err := dc.GetMetadata(withMD(t), &runtimev1.GetMetadataRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("GetMetadata without token: %v, want Unauthenticated", err)
		}
		_, err = dc.GetMetadata(withMD(t, "dapr-api-token", "nope"), &runtimev1.GetMetadataRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("GetMetadata with a wrong token: %v, want Unauthenticated", err)
		}
		md, err := dc.GetMetadata(withMD(t, "dapr-api-token", "secret"), &runtimev1.GetMetadataRequest{})
		if err != nil || md.GetId() != "a" {
			t.Errorf("GetMetadata with token: %v %v, want id a", md.GetId(), err)
		}
		req := &runtimev1.InvokeServiceRequest{Id: "c", Message: &commonv1.InvokeRequest{Method: "x", Data: &anypb.Any{Value: []byte("{}")},
			ContentType: "application/json", HttpExtension: &commonv1.HTTPExtension{Verb: commonv1.HTTPExtension_POST}}}
		if _, err := dc.InvokeService(withMD(t), req); status.Code(err) != codes.Unauthenticated {
			t.Errorf("InvokeService without token: %v, want Unauthenticated", err)
		}
		resp, err := dc.InvokeService(withMD(t, "dapr-api-token", "secret"), req)
		if err != nil {
			t.Fatalf("InvokeService with token: %v", err)
		}
		var e echoReply
		if err := json.Unmarshal(resp.GetData().GetValue(), &e); err != nil || e.App != "app-c" {
			t.Fatalf("InvokeService answer %q (%v), want app-c's echo", resp.GetData().GetValue(), err)
		}
		if got := e.Header.Values("Dapr-Api-Token"); len(got) != 0 {
			t.Errorf("InvokeService: app c saw dapr-api-token %q; the caller's token must never reach an app", got)
		}
	})
}
