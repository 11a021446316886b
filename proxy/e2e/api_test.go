package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMetadataAndHealth checks the metadata API (HTTP and gRPC), the health
// endpoints and that unknown Dapr RPCs answer Unimplemented.
func TestMetadataAndHealth(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	app := startHTTPApp(t, "app-m")
	s := c.start(sidecarOpts{appID: "meta", appPort: app.port})
	dc := runtimev1.NewDaprClient(dial(t, s.GRPCAddr()))

	t.Run("HTTP metadata", func(t *testing.T) {
		r := call(t, http.MethodGet, s.URL("/v1.0/metadata"), nil, nil)
		var md struct {
			ID       string            `json:"id"`
			Extended map[string]string `json:"extended"`
			AppConn  struct {
				Port     int    `json:"port"`
				Protocol string `json:"protocol"`
			} `json:"appConnectionProperties"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &md) != nil {
			t.Fatalf("GET /v1.0/metadata: %d %q, want 200 JSON", r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		if md.ID != "meta" || md.AppConn.Port != app.port || md.AppConn.Protocol != "http" {
			t.Errorf("metadata id %q appConnectionProperties %+v, want id meta, port %d, protocol http", md.ID, md.AppConn, app.port)
		}

		r = call(t, http.MethodPut, s.URL("/v1.0/metadata/cliPID"), nil, []byte("4242"))
		if r.status != http.StatusNoContent {
			t.Errorf("PUT /v1.0/metadata/cliPID: %d %q, want 204", r.status, r.body)
		}
		r = call(t, http.MethodGet, s.URL("/v1.0/metadata"), nil, nil)
		md.Extended = nil
		if err := json.Unmarshal(r.body, &md); err != nil || md.Extended["cliPID"] != "4242" {
			t.Errorf("after PUT cliPID=4242, extended = %v (%v), want cliPID 4242", md.Extended, err)
		}
	})

	t.Run("gRPC metadata", func(t *testing.T) {
		if _, err := dc.SetMetadata(withMD(t), &runtimev1.SetMetadataRequest{Key: "appCommand", Value: "go run ."}); err != nil {
			t.Fatalf("SetMetadata: %v", err)
		}
		md, err := dc.GetMetadata(withMD(t), &runtimev1.GetMetadataRequest{})
		if err != nil {
			t.Fatalf("GetMetadata: %v", err)
		}
		if md.GetId() != "meta" || md.GetExtendedMetadata()["appCommand"] != "go run ." || md.GetExtendedMetadata()["cliPID"] != "4242" {
			t.Errorf("GetMetadata: id %q extended %v, want id meta with appCommand and cliPID (set over HTTP)", md.GetId(), md.GetExtendedMetadata())
		}
		if md.GetAppConnectionProperties().GetPort() != int32(app.port) {
			t.Errorf("GetMetadata: app port %d, want %d", md.GetAppConnectionProperties().GetPort(), app.port)
		}
	})

	t.Run("health", func(t *testing.T) {
		for _, tc := range []struct {
			path string
			want int
			code string
		}{
			{"/v1.0/healthz", 204, ""},
			{"/v1.0/healthz/outbound", 204, ""},
			{"/v1.0/healthz?appid=meta", 204, ""},
			{"/v1.0/healthz?appid=other", 500, "ERR_HEALTH_APPID_NOT_MATCH"},
		} {
			r := call(t, http.MethodGet, s.URL(tc.path), nil, nil)
			if r.status != tc.want {
				t.Errorf("GET %s: %d %q, want %d", tc.path, r.status, r.body, tc.want)
				continue
			}
			if tc.code != "" {
				if e := decodeDaprError(t, r); e.ErrorCode != tc.code {
					t.Errorf("GET %s: error %+v, want %s", tc.path, e, tc.code)
				}
			}
		}
	})

	t.Run("unimplemented Dapr RPC is Unimplemented naming the method", func(t *testing.T) {
		// Workflows are not built yet; their RPCs must say so, by name.
		_, err := dc.StartWorkflowBeta1(withMD(t), &runtimev1.StartWorkflowRequest{WorkflowComponent: "dapr", WorkflowName: "w"})
		if st := status.Convert(err); st.Code() != codes.Unimplemented || !strings.Contains(st.Message(), "StartWorkflowBeta1") {
			t.Errorf("StartWorkflowBeta1: %v %q, want Unimplemented naming StartWorkflowBeta1", st.Code(), st.Message())
		}
	})
}

// TestShutdownAPI checks POST /v1.0/shutdown and gRPC Shutdown: answered at
// once, the process exits cleanly within the grace period and leaves the
// host-local registry.
func TestShutdownAPI(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	const grace = 2 * time.Second
	args := []string{"--dapr-graceful-shutdown-seconds", "2"}
	viaHTTP := c.start(sidecarOpts{appID: "quit-http", appPort: startHTTPApp(t, "app-q1").port, args: args})
	viaGRPC := c.start(sidecarOpts{appID: "quit-grpc", appPort: startHTTPApp(t, "app-q2").port, args: args})

	regFiles := func(appID string) []string {
		m, _ := filepath.Glob(filepath.Join(c.Home, "run", appID+"-*.json"))
		return m
	}
	for _, s := range []*sidecar{viaHTTP, viaGRPC} {
		if len(regFiles(s.appID)) != 1 {
			t.Errorf("registry of running %s: %v, want one file under %s/run", s.appID, regFiles(s.appID), c.Home)
		}
	}

	start := time.Now()
	r := call(t, http.MethodPost, viaHTTP.URL("/v1.0/shutdown"), nil, nil)
	if r.status != http.StatusNoContent {
		t.Errorf("POST /v1.0/shutdown: %d %q, want 204", r.status, r.body)
	}
	dc := runtimev1.NewDaprClient(dial(t, viaGRPC.GRPCAddr()))
	if _, err := dc.Shutdown(withMD(t), &runtimev1.ShutdownRequest{}); err != nil {
		t.Errorf("gRPC Shutdown: %v", err)
	}
	for _, s := range []*sidecar{viaHTTP, viaGRPC} {
		select {
		case <-s.Done():
			t.Logf("%s exited %v after the shutdown call", s.appID, time.Since(start).Round(time.Millisecond))
			if s.Err() != nil {
				t.Errorf("%s exited with %v, want status 0", s.appID, s.Err())
			}
		case <-time.After(grace + time.Second - time.Since(start)):
			t.Errorf("%s still running %v after the shutdown call (grace period %v)", s.appID, time.Since(start).Round(time.Millisecond), grace)
		}
		if f := regFiles(s.appID); len(f) != 0 {
			t.Errorf("%s left its registry file %v behind", s.appID, f)
		}
	}
}
