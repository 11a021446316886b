package bindings

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/outrigger/outrigger/proxy/appchannel"
)

// Bindings is what the building block needs from the plugin host: the
// bindings.* components configured for this sidecar, by component name.
type Bindings interface {
	Lookup(name string) (Binding, bool)
	Names() []string
}

// Binding is one provisioned binding component.
type Binding struct {
	Name string
	// Conn reaches the plugin (componentsv1 InputBinding / OutputBinding
	// services); it carries x-component-instance and fails fast with
	// codes.Unavailable while the plugin is down.
	Conn grpc.ClientConnInterface
	// Features as reported by the plugin (bindings advertise none today).
	Features []string
	// Properties are the component's resolved metadata; "route" and
	// "direction" are read from them.
	Properties map[string]string
	// Input and Output say which services the plugin serves
	// (dapr.proto.components.v1.InputBinding / OutputBinding).
	Input, Output bool
}

// StateSaver saves the state an input binding's app answer carries
// (the state building block, *state.API, satisfies it).
type StateSaver interface {
	SaveState(ctx context.Context, in *runtimev1.SaveStateRequest) (*emptypb.Empty, error)
}

// AppChannel is the sidecar's channel to its app: *appchannel.HTTPChannel or
// *appchannel.GRPCChannel. An HTTP app gets events as POST /<route>; a
// channel that also has Conn (the gRPC channel) gets them through
// AppCallback.OnBindingEvent.
type AppChannel interface {
	Invoke(ctx context.Context, req *appchannel.Request) (*appchannel.Response, error)
}

// grpcApp is an AppChannel to a gRPC app (*appchannel.GRPCChannel).
type grpcApp interface {
	Conn() *grpc.ClientConn
}

// appTokener adds the app token to outgoing calls (*appchannel.GRPCChannel).
type appTokener interface {
	OutgoingContext(ctx context.Context, md metadata.MD) context.Context
}

// Config configures the building block.
type Config struct {
	AppID    string
	Bindings Bindings
	// App is the channel to the app; nil when the sidecar has no app (no
	// input binding is read then).
	App AppChannel
	// State saves state from app answers; nil refuses such answers (logged).
	State  StateSaver
	Logger *slog.Logger
	// MaxConcurrency caps in-flight deliveries per input binding (default 256).
	MaxConcurrency int
}

// API is the bindings building block: output bindings over HTTP
// (RegisterHTTP) and gRPC (InvokeBinding), input bindings read between Start
// and Stop.
type API struct {
	appID    string
	bindings Bindings
	app      AppChannel
	state    StateSaver
	log      *slog.Logger
	maxConc  int

	ops sync.Map // binding name → []string, the plugin's operations

	mu       sync.Mutex
	started  bool
	stopping bool
	readers  []*reader
	wg       sync.WaitGroup // forwarding and state-saving work started by deliveries
}

// New returns the bindings building block.
func New(cfg Config) *API {
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	mc := cfg.MaxConcurrency
	if mc <= 0 {
		mc = 256
	}
	return &API{appID: cfg.AppID, bindings: cfg.Bindings, app: cfg.App, state: cfg.State,
		log: l.With("block", "bindings"), maxConc: mc}
}

// lookup finds a binding by name.
func (a *API) lookup(name string) (Binding, bool) {
	if a.bindings == nil {
		return Binding{}, false
	}
	b, ok := a.bindings.Lookup(name)
	if !ok || b.Conn == nil {
		return Binding{}, false
	}
	if b.Name == "" {
		b.Name = name
	}
	return b, true
}

// property reads a component property by case-insensitive key, as Dapr
// reads "direction".
func property(props map[string]string, key string) (string, bool) {
	if v, ok := props[key]; ok {
		return v, true
	}
	for k, v := range props {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// directions parses the "direction" metadata ("input", "output",
// "input, output"); ok is false when it is absent or blank.
func directions(props map[string]string) (input, output, ok bool) {
	v, found := property(props, "direction")
	if !found || strings.TrimSpace(v) == "" {
		return false, false, false
	}
	for _, d := range strings.Split(v, ",") {
		switch strings.ToLower(strings.TrimSpace(d)) {
		case "input":
			input = true
		case "output":
			output = true
		}
	}
	return input, output, true
}

// route is the app path an input binding's events go to: metadata "route",
// else the binding name; without the leading slash.
func route(b Binding) string {
	if r, ok := property(b.Properties, "route"); ok && strings.TrimSpace(r) != "" {
		return strings.TrimPrefix(strings.TrimSpace(r), "/")
	}
	return b.Name
}
