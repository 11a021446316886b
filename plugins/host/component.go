package host

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/resources"
)

// InstanceMetadataKey is the gRPC metadata key naming the component
// instance a call is for; one plugin process serves many instances.
const InstanceMetadataKey = "x-component-instance"

// Component is a provisioned component: a live client for one Component
// YAML, served by a plugin process (launched or attached).
type Component struct {
	Name     string
	Type     string
	Version  string
	Category string

	spec     resources.Component
	props    map[string]string
	timeout  time.Duration
	plugin   *plugin
	services []ServiceType // the category's services the plugin serves

	cc instanceConn

	// ready is false while the component is not initialised on the current
	// plugin run (before Init, or when a re-Init after a restart failed).
	ready    atomic.Bool
	features atomic.Pointer[[]string]

	mu      sync.Mutex
	lastErr string
	inits   int
}

// ComponentStatus describes a component for /v1.0/metadata and the admin
// endpoint.
type ComponentStatus struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Version  string   `json:"version"`
	Category string   `json:"category"`
	Plugin   string   `json:"plugin"`
	Ready    bool     `json:"ready"`
	Features []string `json:"features,omitempty"`
	// Inits counts successful Init calls (1 + re-Inits after restarts).
	Inits     int    `json:"inits"`
	LastError string `json:"lastError,omitempty"`
}

func newComponent(spec resources.Component, instance string, p *plugin, services []ServiceType, timeout time.Duration) *Component {
	c := &Component{
		Name: spec.Name, Type: spec.Type, Version: spec.Version, Category: spec.Category(),
		spec: spec, props: spec.Properties(), timeout: timeout, plugin: p, services: services,
	}
	c.cc = instanceConn{c: c, md: []string{InstanceMetadataKey, instance}}
	empty := []string{}
	c.features.Store(&empty)
	return c
}

// Conn is the component's gRPC connection: use it with the generated
// dapr.proto.components.v1 clients (e.g. componentsv1.NewStateStoreClient).
// Every call carries x-component-instance: <Name>. While the plugin is down
// or restarting, calls fail at once with codes.Unavailable and a message
// naming the plugin; they never wait for it.
func (c *Component) Conn() grpc.ClientConnInterface { return &c.cc }

// Features are the features the component reported after its last Init
// (e.g. "ETAG", "TRANSACTIONAL").
func (c *Component) Features() []string { return slices.Clone(*c.features.Load()) }

// HasFeature reports whether Features contains f.
func (c *Component) HasFeature(f string) bool { return slices.Contains(*c.features.Load(), f) }

// Spec is the Component manifest the component was provisioned from.
func (c *Component) Spec() resources.Component { return c.spec }

// Plugin names the plugin serving the component ("state-sqlite" for a
// launched binary, "sqlite.sock" for a socket).
func (c *Component) Plugin() string { return c.plugin.name }

// Status reports the component's current state.
func (c *Component) Status() ComponentStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ComponentStatus{
		Name: c.Name, Type: c.Type, Version: c.Version, Category: c.Category, Plugin: c.plugin.name,
		Ready: c.ready.Load() && c.plugin.conn.Load() != nil, Features: c.Features(),
		Inits: c.inits, LastError: c.lastErr,
	}
}

// initialize calls Init (on each of the category's services the plugin
// serves), then Features and Ping, on conn. It is the Provision and
// re-Init step; on success the component is ready.
func (c *Component) initialize(ctx context.Context, conn grpc.ClientConnInterface) error {
	c.ready.Store(false)
	ctx = metadata.AppendToOutgoingContext(ctx, c.cc.md...)
	req := &componentsv1.InitRequest{Metadata: &componentsv1.MetadataRequest{Properties: c.props}}
	var features []string
	for _, s := range c.services {
		if err := conn.Invoke(ctx, method(s.Service, "Init"), req, &componentsv1.InitResponse{}); err != nil {
			return c.fail(fmt.Errorf("init %s: %w", c.Name, err))
		}
		if s.HasFeatures {
			var resp componentsv1.FeaturesResponse
			err := conn.Invoke(ctx, method(s.Service, "Features"), &componentsv1.FeaturesRequest{}, &resp)
			if err != nil && status.Code(err) != codes.Unimplemented {
				return c.fail(fmt.Errorf("features of %s: %w", c.Name, err))
			}
			for _, f := range resp.GetFeatures() {
				if !slices.Contains(features, f) {
					features = append(features, f)
				}
			}
		}
		err := conn.Invoke(ctx, method(s.Service, "Ping"), &componentsv1.PingRequest{}, &componentsv1.PingResponse{})
		if err != nil && status.Code(err) != codes.Unimplemented {
			return c.fail(fmt.Errorf("ping %s after init: %w", c.Name, err))
		}
	}
	if features == nil {
		features = []string{}
	}
	c.features.Store(&features)
	c.mu.Lock()
	c.inits++
	c.lastErr = ""
	c.mu.Unlock()
	c.ready.Store(true)
	return nil
}

func (c *Component) fail(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		err = fmt.Errorf("%w (initTimeout %s)", err, c.timeout)
	}
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
	return err
}

// instanceConn is the grpc.ClientConnInterface Conn returns: it picks the
// plugin's current connection and appends the instance metadata pair. No
// other per-call work.
type instanceConn struct {
	c  *Component
	md []string
}

func (ic *instanceConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	conn, err := ic.conn()
	if err != nil {
		return err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, ic.md...)
	if b := ic.c.plugin.batch.Load(); b != nil && b.conn == conn {
		err = b.invoke(ctx, method, args, reply, opts...)
	} else {
		err = conn.Invoke(ctx, method, args, reply, opts...)
	}
	if err != nil && connLost(ctx, err) {
		return ic.c.plugin.checkUnavailable(conn, err)
	}
	return err
}

func (ic *instanceConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	conn, err := ic.conn()
	if err != nil {
		return nil, err
	}
	s, err := conn.NewStream(metadata.AppendToOutgoingContext(ctx, ic.md...), desc, method, opts...)
	if err != nil && connLost(ctx, err) {
		return nil, ic.c.plugin.checkUnavailable(conn, err)
	}
	return s, err
}

func (ic *instanceConn) conn() (*grpc.ClientConn, error) {
	conn := ic.c.plugin.conn.Load()
	if conn == nil {
		return nil, ic.c.plugin.unavailable()
	}
	if !ic.c.ready.Load() {
		ic.c.mu.Lock()
		msg := ic.c.lastErr
		ic.c.mu.Unlock()
		if msg == "" {
			msg = "not initialised"
		}
		return nil, status.Errorf(codes.Unavailable, "component %s (plugin %s) is not ready: %s", ic.c.Name, ic.c.plugin.name, msg)
	}
	return conn, nil
}

// connLost reports whether err may come from the connection going away
// rather than from the plugin: Unavailable, or Canceled although the
// caller's context is live (the supervisor closed the connection).
func connLost(ctx context.Context, err error) bool {
	switch status.Code(err) {
	case codes.Unavailable:
		return true
	case codes.Canceled:
		return ctx.Err() == nil
	}
	return false
}

// Serves reports whether the component's plugin serves the gRPC service (for
// bindings: which of InputBinding and OutputBinding it has).
func (c *Component) Serves(service string) bool {
	for _, s := range c.services {
		if s.Service == service {
			return true
		}
	}
	return false
}
