package sdk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// Handshake is the go-plugin handshake shared by the SDK and the host: the
// host sets the magic cookie in the plugin's environment when it launches it.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "OUTRIGGER_PLUGIN",
	MagicCookieValue: "outrigger-component-v1",
}

// PluginName is the name of the single entry in the go-plugin plugin set.
const PluginName = "component"

// InstanceMetadataKey is the gRPC metadata key naming the component instance
// a call is for (as in Dapr's pluggable components).
const InstanceMetadataKey = "x-component-instance"

// SocketsDirEnv names the environment variable holding the sockets folder.
const SocketsDirEnv = "DAPR_COMPONENTS_SOCKETS_FOLDER"

// DefaultSocketsDir is used when SocketsDirEnv is unset.
const DefaultSocketsDir = "/tmp/dapr-components-sockets"

// Option configures Serve, Run and Register.
type Option func(*config)

type config struct {
	name       string
	socketsDir string
	logger     *slog.Logger
	// services are the component categories to serve, one per With… option
	// (WithStateStore, WithPubSub, …); each registers its gRPC services.
	services []service
}

// service is one served component category.
type service struct {
	category string
	// register puts the category's gRPC services on s and returns a function
	// that closes every instance it created.
	register func(s grpc.ServiceRegistrar, log *slog.Logger) (closeAll func() error, err error)
}

// addService returns an Option serving one category; every With… option is built on it.
func addService(category string, register func(grpc.ServiceRegistrar, *slog.Logger) (func() error, error)) Option {
	return func(c *config) { c.services = append(c.services, service{category: category, register: register}) }
}

// Name sets the socket name (<sockets dir>/<name>.sock); default: the binary name.
func Name(name string) Option { return func(c *config) { c.name = name } }

// WithStateStore serves a state store; newStore is called once per component
// instance (at Init) and once more to find the store's capabilities.
//
// (contracts.md spells this option sdk.StateStore(New), but Go cannot have a
// function and the StateStore interface under one name; the interface keeps
// the name.)
func WithStateStore(newStore func() StateStore) Option {
	return addService("state", func(s grpc.ServiceRegistrar, log *slog.Logger) (func() error, error) {
		srv, err := newStateServer(newStore, log)
		if err != nil {
			return nil, err
		}
		srv.register(s)
		return srv.closeAll, nil
	})
}

// Logger sets the logger; default: text to stderr (go-plugin forwards
// stderr to the host).
func Logger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// SocketsDir overrides the sockets folder used outside go-plugin.
func SocketsDir(dir string) Option { return func(c *config) { c.socketsDir = dir } }

func newConfig(opts []Option) (*config, error) {
	c := &config{}
	for _, o := range opts {
		o(c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if c.name == "" {
		c.name = filepath.Base(os.Args[0])
	}
	if strings.ContainsAny(c.name, `/\`) || c.name == "." || c.name == ".." {
		return nil, fmt.Errorf("plugin name %q: must be a plain file name", c.name)
	}
	if c.socketsDir == "" {
		c.socketsDir = os.Getenv(SocketsDirEnv)
	}
	if c.socketsDir == "" {
		c.socketsDir = DefaultSocketsDir
	}
	if len(c.services) == 0 {
		return nil, errNoServices
	}
	return c, nil
}

// Serve serves the configured components until the process is told to stop.
// Launched by the Outrigger host (magic cookie present) it serves under
// hashicorp/go-plugin; otherwise it listens on <sockets dir>/<name>.sock and
// stops cleanly on SIGINT/SIGTERM. On a fatal error it logs and exits with
// status 1.
func Serve(opts ...Option) {
	signals := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if launchedByHost() {
		// Under go-plugin, Ctrl-C in the host's terminal reaches the plugin
		// too; go-plugin ignores it and the host shuts the plugin down.
		signals = []os.Signal{syscall.SIGTERM}
	}
	ctx, stop := signal.NotifyContext(context.Background(), signals...)
	defer stop()
	if err := Run(ctx, opts...); err != nil {
		slog.New(slog.NewTextHandler(os.Stderr, nil)).Error("plugin failed", "err", err)
		stop()
		os.Exit(1)
	}
}

// Run is Serve with an explicit context and an error instead of exiting:
// in socket mode it returns when ctx is done, after removing the socket.
func Run(ctx context.Context, opts ...Option) error {
	c, err := newConfig(opts)
	if err != nil {
		return err
	}
	if launchedByHost() {
		return runPlugin(ctx, c)
	}
	return runSocket(ctx, c)
}

func launchedByHost() bool {
	return os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue
}

// Register registers the component services for opts on s (StateStore, plus
// TransactionalStateStore / QueriableStateStore when the store implements
// them). It returns a function that closes every instance created since.
// Serve uses it; so does sdktest.
func Register(s grpc.ServiceRegistrar, opts ...Option) (closeAll func() error, err error) {
	c := &config{}
	for _, o := range opts {
		o(c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if len(c.services) == 0 {
		return nil, errNoServices
	}
	return register(s, c)
}

var errNoServices = errors.New("no component to serve: pass an option such as sdk.WithStateStore(New)")

// register registers every configured category; on error the ones already
// registered are closed.
func register(s grpc.ServiceRegistrar, c *config) (func() error, error) {
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for _, f := range closers {
			errs = append(errs, f())
		}
		return errors.Join(errs...)
	}
	rec := &recorder{next: s, methods: map[string]unaryMethod{}, mergers: map[string]merger{}}
	for _, svc := range c.services {
		f, err := svc.register(rec, c.logger)
		if err != nil {
			_ = closeAll()
			return nil, fmt.Errorf("serve %s: %w", svc.category, err)
		}
		closers = append(closers, f)
	}
	ocomponentsv1.RegisterUnaryBatchServer(s, &batchServer{methods: rec.methods, mergers: rec.mergers})
	return closeAll, nil
}

// ComponentPlugin is the go-plugin plugin registered under PluginName. On the
// plugin side it registers the component services; on the host side (zero
// value) GRPCClient hands back the raw connection.
type ComponentPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	register func(*grpc.Server) error
}

// GRPCServer registers the component services on go-plugin's server (which
// already carries gRPC reflection and health).
func (p *ComponentPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.register == nil {
		return errors.New("component plugin: no components configured")
	}
	return p.register(s)
}

// GRPCClient returns conn itself (a grpc.ClientConnInterface).
func (p *ComponentPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return conn, nil
}

// runPlugin serves under go-plugin until the host shuts the plugin down.
// go-plugin offers no way to stop serving from inside, so when ctx ends
// (SIGTERM) the stores are closed and the process exits.
func runPlugin(ctx context.Context, c *config) error {
	var (
		mu       sync.Mutex
		closeAll func() error
	)
	closeStores := func() error {
		mu.Lock()
		defer mu.Unlock()
		if closeAll == nil {
			return nil
		}
		fn := closeAll
		closeAll = nil
		return fn()
	}
	p := &ComponentPlugin{register: func(s *grpc.Server) error {
		fn, err := register(s, c)
		mu.Lock()
		closeAll = fn
		mu.Unlock()
		return err
	}}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			c.logger.Info("terminated, closing components")
			if err := closeStores(); err != nil {
				c.logger.Error("closing components", "err", err)
				os.Exit(1)
			}
			os.Exit(0)
		case <-stopped:
		}
	}()
	c.logger.Info("serving under go-plugin", "name", c.name)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: p},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
	if err := closeStores(); err != nil {
		return fmt.Errorf("closing components: %w", err)
	}
	return nil
}

func runSocket(ctx context.Context, c *config) error {
	if err := os.MkdirAll(c.socketsDir, 0o755); err != nil {
		return fmt.Errorf("creating sockets folder: %w", err)
	}
	path := filepath.Join(c.socketsDir, c.name+".sock")
	if err := removeStaleSocket(path); err != nil {
		return err
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", path, err)
	}
	// The listener removes the socket file when closed.
	defer lis.Close()

	s := grpc.NewServer()
	closeAll, err := register(s, c)
	if err != nil {
		return err
	}
	reflection.Register(s)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	errc := make(chan error, 1)
	go func() { errc <- s.Serve(lis) }()
	c.logger.Info("serving on unix socket", "socket", path)

	var serveErr error
	select {
	case <-ctx.Done():
		c.logger.Info("shutting down", "socket", path)
		hs.Shutdown()
		gracefulStop(s, 10*time.Second)
	case serveErr = <-errc:
		if serveErr != nil {
			serveErr = fmt.Errorf("serving on %s: %w", path, serveErr)
		}
	}
	_ = lis.Close()
	_ = os.Remove(path) // in case the listener did not unlink it
	if err := closeAll(); err != nil {
		return errors.Join(serveErr, fmt.Errorf("closing components: %w", err))
	}
	return serveErr
}

func gracefulStop(s *grpc.Server, timeout time.Duration) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.Stop()
	}
}

// removeStaleSocket deletes a socket file nobody listens on; a live one is
// an error (another process serves that name).
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; refusing to remove it", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = conn.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	return nil
}
