// Command testplugin is an in-memory state store written directly against
// the Dapr generated protos and hashicorp/go-plugin (no Outrigger SDK): it
// proves such a plugin works with the host. Under go-plugin (magic cookie
// set) it serves over go-plugin; otherwise on
// $DAPR_COMPONENTS_SOCKETS_FOLDER/$TESTPLUGIN_NAME.sock.
//
// Component metadata steers it: initDelay (a duration Init sleeps) and
// failInit (Init fails). Calls for an instance that was not Init'ed fail
// with FailedPrecondition, so tests see re-Init after a restart.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

type store struct {
	componentsv1.UnimplementedStateStoreServer
	mu        sync.Mutex
	instances map[string]map[string][]byte
}

func instance(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-component-instance"); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *store) data(ctx context.Context) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.instances[instance(ctx)]
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "instance %q not initialised", instance(ctx))
	}
	return d, nil
}

func (s *store) Init(ctx context.Context, req *componentsv1.InitRequest) (*componentsv1.InitResponse, error) {
	props := req.GetMetadata().GetProperties()
	if d, err := time.ParseDuration(props["initDelay"]); err == nil {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if props["failInit"] == "true" {
		return nil, errors.New("init failed as asked")
	}
	s.mu.Lock()
	s.instances[instance(ctx)] = map[string][]byte{}
	s.mu.Unlock()
	fmt.Fprintf(os.Stderr, "testplugin: init %s\n", instance(ctx))
	return &componentsv1.InitResponse{}, nil
}

func (s *store) Features(context.Context, *componentsv1.FeaturesRequest) (*componentsv1.FeaturesResponse, error) {
	return &componentsv1.FeaturesResponse{Features: []string{"ETAG"}}, nil
}

func (s *store) Ping(context.Context, *componentsv1.PingRequest) (*componentsv1.PingResponse, error) {
	return &componentsv1.PingResponse{}, nil
}

func (s *store) Get(ctx context.Context, req *componentsv1.GetRequest) (*componentsv1.GetResponse, error) {
	d, err := s.data(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &componentsv1.GetResponse{Data: d[req.GetKey()]}, nil
}

func (s *store) Set(ctx context.Context, req *componentsv1.SetRequest) (*componentsv1.SetResponse, error) {
	d, err := s.data(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d[req.GetKey()] = req.GetValue()
	return &componentsv1.SetResponse{}, nil
}

func (s *store) Delete(ctx context.Context, req *componentsv1.DeleteRequest) (*componentsv1.DeleteResponse, error) {
	d, err := s.data(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(d, req.GetKey())
	return &componentsv1.DeleteResponse{}, nil
}

// component is the go-plugin plugin: it registers the store on go-plugin's
// gRPC server (which carries reflection and health already).
type component struct {
	goplugin.NetRPCUnsupportedPlugin
	s *store
}

func (c *component) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	componentsv1.RegisterStateStoreServer(s, c.s)
	return nil
}

func (c *component) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("plugin side only")
}

func main() {
	s := &store{instances: map[string]map[string][]byte{}}
	if os.Getenv("OUTRIGGER_PLUGIN") == "outrigger-component-v1" {
		fmt.Fprintln(os.Stderr, "testplugin: serving under go-plugin")
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig: goplugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "OUTRIGGER_PLUGIN", MagicCookieValue: "outrigger-component-v1"},
			Plugins:         goplugin.PluginSet{"component": &component{s: s}},
			GRPCServer:      goplugin.DefaultGRPCServer,
		})
		return
	}
	dir := os.Getenv("DAPR_COMPONENTS_SOCKETS_FOLDER")
	name := os.Getenv("TESTPLUGIN_NAME")
	if dir == "" || name == "" {
		fmt.Fprintln(os.Stderr, "testplugin: set DAPR_COMPONENTS_SOCKETS_FOLDER and TESTPLUGIN_NAME")
		os.Exit(2)
	}
	path := filepath.Join(dir, name+".sock")
	_ = os.Remove(path)
	lis, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testplugin:", err)
		os.Exit(1)
	}
	srv := grpc.NewServer()
	componentsv1.RegisterStateStoreServer(srv, s)
	reflection.Register(srv)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Stop() }()
	fmt.Fprintln(os.Stderr, "testplugin: serving on", path)
	_ = srv.Serve(lis)
	_ = os.Remove(path)
}
