package bindings_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/proxy/bindings"
)

// The tests run against the real bindings.cron and bindings.http plugins:
// TestMain builds them and starts one process of each on a unix socket; each
// component is one x-component-instance. An in-process SDK binding (feed)
// gives tests events on demand.
var (
	cronConn, httpConn, feedConn *grpc.ClientConn
	feedEvents                   = make(chan feedEvent, 100)
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bindings tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func startPlugin(dir, pkg, bin, sockets, sock string) (*grpc.ClientConn, func(), error) {
	path := filepath.Join(dir, bin)
	if out, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("building %s: %v\n%s", pkg, err, out)
	}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "DAPR_COMPONENTS_SOCKETS_FOLDER="+sockets)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	conn, err := dialSocket(filepath.Join(sockets, sock))
	if err != nil {
		stop()
		return nil, nil, err
	}
	return conn, func() { _ = conn.Close(); stop() }, nil
}

func dialSocket(sock string) (*grpc.ClientConn, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("plugin socket %s not ready: %w", sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "bindings-test")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	sockets := filepath.Join(dir, "sockets")
	var stop func()
	if cronConn, stop, err = startPlugin(dir, "../../plugins/bindings/cron", "bindings-cron", sockets, "cron.sock"); err != nil {
		return 0, err
	}
	defer stop()
	if httpConn, stop, err = startPlugin(dir, "../../plugins/bindings/http", "bindings-http", sockets, "http.sock"); err != nil {
		return 0, err
	}
	defer stop()

	// The feed binding, served by the SDK in this process.
	lis, err := net.Listen("unix", filepath.Join(sockets, "feed.sock"))
	if err != nil {
		return 0, err
	}
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, sdk.WithInputBinding(func() sdk.InputBinding { return &feed{} }),
		sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return 0, err
	}
	go func() { _ = srv.Serve(lis) }()
	defer func() { srv.Stop(); _ = closeAll() }()
	if feedConn, err = dialSocket(filepath.Join(sockets, "feed.sock")); err != nil {
		return 0, err
	}
	defer feedConn.Close()
	return m.Run(), nil
}

// feedEvent is one event the feed binding emits; the handler's result is
// sent on result.
type feedEvent struct {
	data   string
	md     map[string]string
	result chan feedResult
}

type feedResult struct {
	body []byte
	err  error
}

// feed emits the events tests put on feedEvents.
type feed struct{}

func (*feed) Init(context.Context, sdk.Metadata) error { return nil }
func (*feed) Read(ctx context.Context, h sdk.BindingHandler) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-feedEvents:
			go func() {
				body, err := h(ctx, &sdk.BindingEvent{Data: []byte(ev.data), Metadata: ev.md})
				ev.result <- feedResult{body, err}
			}()
		}
	}
}

// instanceConn adds x-component-instance to every call, as the plugin host does.
type instanceConn struct {
	cc       grpc.ClientConnInterface
	instance string
}

func (c instanceConn) ctx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, c.instance)
}

func (c instanceConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.cc.Invoke(c.ctx(ctx), method, args, reply, opts...)
}

func (c instanceConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.cc.NewStream(c.ctx(ctx), desc, method, opts...)
}

var instanceSeq = 0

// initInput / initOutput initialise one component instance of a plugin and
// return it as a Binding.
func initInput(t *testing.T, cc *grpc.ClientConn, name string, md map[string]string) bindings.Binding {
	t.Helper()
	instanceSeq++
	c := instanceConn{cc: cc, instance: fmt.Sprintf("%s-%s-%d", t.Name(), name, instanceSeq)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := componentsv1.NewInputBindingClient(c).Init(ctx, &componentsv1.InputBindingInitRequest{Metadata: &componentsv1.MetadataRequest{Properties: md}}); err != nil {
		t.Fatalf("Init %s: %v", name, err)
	}
	return bindings.Binding{Name: name, Conn: c, Properties: md, Input: true}
}

func initOutput(t *testing.T, cc *grpc.ClientConn, name string, md map[string]string) bindings.Binding {
	t.Helper()
	instanceSeq++
	c := instanceConn{cc: cc, instance: fmt.Sprintf("%s-%s-%d", t.Name(), name, instanceSeq)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := componentsv1.NewOutputBindingClient(c).Init(ctx, &componentsv1.OutputBindingInitRequest{Metadata: &componentsv1.MetadataRequest{Properties: md}}); err != nil {
		t.Fatalf("Init %s: %v", name, err)
	}
	return bindings.Binding{Name: name, Conn: c, Properties: md, Output: true}
}

// table is a Bindings from a map.
type table map[string]bindings.Binding

func (m table) Lookup(name string) (bindings.Binding, bool) { b, ok := m[name]; return b, ok }
func (m table) Names() []string                             { return slices.Sorted(maps.Keys(m)) }
