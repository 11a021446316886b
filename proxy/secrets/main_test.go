package secrets_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// The tests run against the real secretstores.local.file plugin: TestMain
// builds it and starts one plugin process serving a unix socket; each
// component is one x-component-instance of it.
var (
	pluginConn  *grpc.ClientConn
	secretsFile string
)

const fixture = `{
  "db-pass": "pw",
  "api-key": "k",
  "redis": {"password": "rp", "user": "ru"},
  "emptyobj": {}
}`

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "secrets tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "secrets-test")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "secretstores-local.file")
	build := exec.Command("go", "build", "-o", bin, "../../plugins/secretstores/local.file")
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building the local.file plugin: %v\n%s", err, out)
	}
	secretsFile = filepath.Join(dir, "secrets.json")
	if err := os.WriteFile(secretsFile, []byte(fixture), 0o600); err != nil {
		return 0, err
	}
	sockets := filepath.Join(dir, "sockets")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "DAPR_COMPONENTS_SOCKETS_FOLDER="+sockets)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the plugin: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	sock := filepath.Join(sockets, "local.file.sock")
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("plugin socket %s not ready: %w", sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	pluginConn, err = grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer pluginConn.Close()
	return m.Run(), nil
}

// instanceConn adds x-component-instance to every call, as the plugin host does.
type instanceConn struct {
	cc       grpc.ClientConnInterface
	instance string
}

func (c instanceConn) ctx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-component-instance", c.instance)
}

func (c instanceConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.cc.Invoke(c.ctx(ctx), method, args, reply, opts...)
}

func (c instanceConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.cc.NewStream(c.ctx(ctx), desc, method, opts...)
}

// initInstance initialises one component instance of the plugin (pluginConn
// unless cc is given).
func initInstance(t testing.TB, name string, md map[string]string, cc ...grpc.ClientConnInterface) instanceConn {
	t.Helper()
	c := instanceConn{cc: pluginConn, instance: name}
	if len(cc) > 0 {
		c.cc = cc[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := componentsv1.NewSecretStoreClient(c).Init(ctx, &componentsv1.SecretStoreInitRequest{
		Metadata: &componentsv1.MetadataRequest{Properties: md},
	}); err != nil {
		t.Fatalf("Init %s: %v", name, err)
	}
	return c
}

func uniq(t testing.TB, name string) string {
	return name + "-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
}
