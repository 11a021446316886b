package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

// helperEnv makes the test binary act as a plugin (for the go-plugin test).
const helperEnv = "OUTRIGGER_SDK_TEST_HELPER_PLUGIN"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		sdk.Serve(sdk.Name("memory"), sdk.WithStateStore(newFull))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestConformanceFullStore(t *testing.T) {
	sdktest.ExerciseStateStore(t, newFull, sdk.Metadata{})
}

func TestConformancePlainStore(t *testing.T) {
	sdktest.ExerciseStateStore(t, newPlain, nil)
}

func TestStateFeaturesDerived(t *testing.T) {
	tests := []struct {
		name  string
		store sdk.StateStore
		want  []string
	}{
		{"plain", newPlain(), []string{}},
		{"full", newFull(), []string{sdk.FeatureETag, sdk.FeatureTransactional, sdk.FeatureTTL}},
	}
	for _, tc := range tests {
		if got := sdk.StateFeatures(tc.store); !slices.Equal(got, tc.want) {
			t.Errorf("%s: features %v, want %v", tc.name, got, tc.want)
		}
	}
}

// errStore returns a fixed error from every call, to pin the wire mapping.
type errStore struct{ err error }

func (s errStore) Init(context.Context, sdk.Metadata) error { return nil }
func (s errStore) Get(context.Context, *sdk.GetRequest) (*sdk.GetResponse, error) {
	return nil, s.err
}
func (s errStore) Set(context.Context, *sdk.SetRequest) error       { return s.err }
func (s errStore) Delete(context.Context, *sdk.DeleteRequest) error { return s.err }

func TestWireErrorMapping(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		code      codes.Code
		etagField bool
	}{
		{"mismatch", fmt.Errorf("key k: %w", sdk.ErrETagMismatch), codes.FailedPrecondition, true},
		{"invalid", fmt.Errorf("etag x: %w", sdk.ErrETagInvalid), codes.InvalidArgument, true},
		{"other", errors.New("disk on fire"), codes.Internal, false},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), codes.DeadlineExceeded, false},
		{"status passes through", status.Error(codes.ResourceExhausted, "quota"), codes.ResourceExhausted, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := serveInProcess(t, func() sdk.StateStore { return errStore{tc.err} })
			c := componentsv1.NewStateStoreClient(conn)
			ctx := instanceCtx(t, "e")
			if _, err := c.Init(ctx, &componentsv1.InitRequest{}); err != nil {
				t.Fatalf("Init: %v", err)
			}
			_, err := c.Set(ctx, &componentsv1.SetRequest{Key: "k"})
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Fatalf("code %v, want %v (%v)", st.Code(), tc.code, err)
			}
			if !strings.Contains(st.Message(), tc.err.Error()) && tc.code != codes.ResourceExhausted {
				t.Errorf("message %q does not carry the store error %q", st.Message(), tc.err)
			}
			hasField := false
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 && br.GetFieldViolations()[0].GetField() == "etag" {
					hasField = true
				}
			}
			if hasField != tc.etagField {
				t.Errorf("etag field violation present=%v, want %v", hasField, tc.etagField)
			}
		})
	}
}

func TestInstancesAreSeparate(t *testing.T) {
	conn := serveInProcess(t, newFull)
	c := componentsv1.NewStateStoreClient(conn)
	a, b := instanceCtx(t, "a"), instanceCtx(t, "b")
	for _, ctx := range []context.Context{a, b} {
		if _, err := c.Init(ctx, &componentsv1.InitRequest{}); err != nil {
			t.Fatalf("Init: %v", err)
		}
	}
	if _, err := c.Set(a, &componentsv1.SetRequest{Key: "k", Value: []byte("in a")}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	resp, err := c.Get(b, &componentsv1.GetRequest{Key: "k"})
	if err != nil || len(resp.GetData()) != 0 {
		t.Fatalf("instance b sees instance a's key: %q, %v", resp.GetData(), err)
	}
	_, err = c.Init(instanceCtx(t, "c"), &componentsv1.InitRequest{Metadata: &componentsv1.MetadataRequest{Properties: map[string]string{"fail": "true"}}})
	if err == nil || !strings.Contains(err.Error(), "asked to fail") {
		t.Fatalf("failing Init: %v, want the store's error", err)
	}
	_, err = c.Get(instanceCtx(t, "c"), &componentsv1.GetRequest{Key: "k"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Get after a failed Init: %v, want FailedPrecondition", err)
	}
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name, op string
		filter   string
		wantErr  string
	}{
		{name: "empty", filter: `{}`},
		{name: "EQ", filter: `{"EQ":{"a.b":1}}`, op: "EQ"},
		{name: "IN", filter: `{"IN":{"a":[1,"x"]}}`, op: "IN"},
		{name: "AND", filter: `{"AND":[{"EQ":{"a":1}},{"OR":[{"EQ":{"b":2}},{"IN":{"c":[3]}}]}]}`, op: "AND"},
		{name: "unknown op", filter: `{"LIKE":{"a":"x"}}`, wantErr: "unsupported operator"},
		{name: "two keys", filter: `{"EQ":{"a":1,"b":2}}`, wantErr: "exactly one key"},
		{name: "IN not array", filter: `{"IN":{"a":1}}`, wantErr: "non-empty array"},
		{name: "AND not array", filter: `{"AND":{"a":1}}`, wantErr: "array of filters"},
		{name: "AND empty child", filter: `{"AND":[{}]}`, wantErr: "empty filter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var top map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.filter), &top); err != nil {
				t.Fatal(err)
			}
			f, err := sdk.ParseFilter(top)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (f == nil) != (tc.op == "") || (f != nil && f.Op != tc.op) {
				t.Fatalf("parsed %+v, want op %q", f, tc.op)
			}
		})
	}
}

func TestParseTTL(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		ok, err bool
	}{
		{"", 0, false, false}, {"-1", 0, false, false}, {"0", 0, false, false},
		{"5", 5 * time.Second, true, false}, {"-2", 0, false, true}, {"x", 0, false, true},
	}
	for _, tc := range tests {
		d, ok, err := sdk.ParseTTL(map[string]string{sdk.TTLMetadataKey: tc.in})
		if d != tc.want || ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("ParseTTL(%q) = %v %v %v", tc.in, d, ok, err)
		}
	}
}

func TestSocketMode(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "memory.sock")
	// A stale socket file (nobody listening) is replaced.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = stale.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sdk.Run(ctx, sdk.Name("memory"), sdk.SocketsDir(dir), sdk.WithStateStore(newFull),
			sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	}()
	// Wait until the server has replaced the stale socket and accepts connections.
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("unix", sock)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin socket never accepted a connection: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Readiness: poll health with a deadline.
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(5 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := hc.Check(rctx, &healthpb.HealthCheckRequest{})
		rcancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin socket not healthy after 5 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	services := listServices(t, conn)
	for _, want := range []string{"dapr.proto.components.v1.StateStore", "dapr.proto.components.v1.TransactionalStateStore"} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection lists %v, missing %s", services, want)
		}
	}
	if slices.Contains(services, "dapr.proto.components.v1.QueriableStateStore") {
		t.Errorf("reflection lists QueriableStateStore for a store without Query")
	}

	// A second server on the same name must refuse, not steal the socket.
	err = sdk.Run(context.Background(), sdk.Name("memory"), sdk.SocketsDir(dir), sdk.WithStateStore(newFull),
		sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Run on a live socket: %v, want an 'in use' error", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind after shutdown: %v", err)
	}
}

func TestServeRequiresAComponent(t *testing.T) {
	err := sdk.Run(context.Background(), sdk.SocketsDir(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "WithStateStore") {
		t.Fatalf("Run without components: %v", err)
	}
}

// TestGoPluginMode launches this test binary as a plugin through go-plugin,
// exactly as the host does, and talks to the store over the returned conn.
func TestGoPluginMode(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          plugin.PluginSet{sdk.PluginName: &sdk.ComponentPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Stderr:           io.Discard,
		Logger:           hclog.NewNullLogger(),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("starting plugin: %v", err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	conn, ok := raw.(*grpc.ClientConn)
	if !ok {
		t.Fatalf("dispensed %T, want *grpc.ClientConn", raw)
	}
	if services := listServices(t, conn); !slices.Contains(services, "dapr.proto.components.v1.StateStore") {
		t.Fatalf("reflection under go-plugin lists %v", services)
	}
	c := componentsv1.NewStateStoreClient(conn)
	ctx := instanceCtx(t, "gp")
	if _, err := c.Init(ctx, &componentsv1.InitRequest{}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if _, err := c.Set(ctx, &componentsv1.SetRequest{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	resp, err := c.Get(ctx, &componentsv1.GetRequest{Key: "k"})
	if err != nil || string(resp.GetData()) != "v" || resp.GetEtag().GetValue() == "" {
		t.Fatalf("Get: %v %v", resp, err)
	}
	f, err := c.Features(ctx, &componentsv1.FeaturesRequest{})
	if err != nil || !slices.Contains(f.GetFeatures(), sdk.FeatureETag) {
		t.Fatalf("Features: %v %v", f, err)
	}
}

// TestImportBoundary: plugins/sdk must not depend on the proxy, the host,
// discovery or resiliency, and keeps a small module graph.
func TestImportBoundary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const root = "github.com/outrigger/outrigger/"
	allowedModules := []string{
		"github.com/outrigger/outrigger", "google.golang.org/grpc", "google.golang.org/protobuf",
		"google.golang.org/genproto/googleapis/rpc", "github.com/dapr/dapr", "github.com/hashicorp/go-plugin",
		// go-plugin's own dependencies and the x/ modules grpc needs:
		"github.com/hashicorp/go-hclog", "github.com/hashicorp/yamux", "github.com/golang/protobuf", "github.com/oklog/run",
		"github.com/fatih/color", "github.com/mattn/go-colorable", "github.com/mattn/go-isatty",
		"golang.org/x/net", "golang.org/x/sys", "golang.org/x/text",
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, mod, _ := strings.Cut(line, " ")
		if mod == "" {
			continue // standard library
		}
		for _, banned := range []string{"proxy", "plugins/host", "discovery", "resiliency"} {
			if strings.HasPrefix(pkg, root+banned) {
				t.Errorf("plugins/sdk depends on %s", pkg)
			}
		}
		if !slices.Contains(allowedModules, mod) {
			t.Errorf("plugins/sdk pulls in module %s (package %s); keep the SDK's module graph small", mod, pkg)
		}
	}
}

func serveInProcess(t *testing.T, newStore func() sdk.StateStore) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, sdk.WithStateStore(newStore), sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); srv.Stop(); _ = closeAll() })
	return conn
}

func instanceCtx(t *testing.T, name string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, name)
}

func listServices(t *testing.T, conn grpc.ClientConnInterface) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatalf("reflection send: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection recv: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}
