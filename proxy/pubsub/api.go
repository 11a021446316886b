package pubsub

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/outrigger/outrigger/proxy/telemetry"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/resources"
)

// Feature names a broker advertises (componentsv1 FeaturesResponse).
const (
	FeatureMessageTTL         = "MESSAGE_TTL"
	FeatureBulkPublish        = "BULK_PUBSUB"
	FeatureSubscribeWildcards = "SUBSCRIBE_WILDCARDS"
)

// Brokers is what the building block needs from the plugin host: the pub/sub
// components configured for this sidecar, by component name.
type Brokers interface {
	Lookup(name string) (Broker, bool)
	Names() []string
}

// Broker is one provisioned pub/sub component.
type Broker struct {
	Name string
	// Conn reaches the plugin (componentsv1 PubSub service); it carries
	// x-component-instance and fails fast with codes.Unavailable while the
	// plugin is down.
	Conn grpc.ClientConnInterface
	// Features as reported by the plugin (MESSAGE_TTL, BULK_PUBSUB, …).
	Features []string
	// Properties are the component's resolved metadata; the scoping keys
	// publishingScopes, subscriptionScopes, allowedTopics and protectedTopics
	// are read from them.
	Properties map[string]string
}

// HasFeature reports whether the broker advertises feature f.
func (b Broker) HasFeature(f string) bool { return slices.Contains(b.Features, f) }

// AppChannel is the sidecar's channel to its app: *appchannel.HTTPChannel or
// *appchannel.GRPCChannel. An HTTP app receives events as POST /<route>; a
// channel that also has Conn and OutgoingContext (the gRPC channel) receives
// them through AppCallback.OnTopicEvent.
type AppChannel interface {
	Invoke(ctx context.Context, req *appchannel.Request) (*appchannel.Response, error)
}

// grpcApp is an AppChannel to a gRPC app (*appchannel.GRPCChannel).
type grpcApp interface {
	Conn() *grpc.ClientConn
}

// appTokener adds the app token to outgoing calls (*appchannel.GRPCChannel);
// optional.
type appTokener interface {
	OutgoingContext(ctx context.Context, md metadata.MD) context.Context
}

// outgoingContext sets md as ctx's outgoing metadata, with the app token
// when the channel has one.
func outgoingContext(g grpcApp, ctx context.Context, md metadata.MD) context.Context {
	if t, ok := g.(appTokener); ok {
		return t.OutgoingContext(ctx, md)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// Config configures the building block.
type Config struct {
	AppID   string
	Brokers Brokers
	// App is the channel to the app; nil when the sidecar has no app (only
	// streaming subscriptions are served then).
	App AppChannel
	// Declarative are the Subscription resources loaded from the resources
	// paths (already filtered by scopes by the loader; filtered again here).
	Declarative []resources.Subscription
	Logger      *slog.Logger
	// Retrier is the inbound policy applied to deliveries; nil means
	// DefaultRetrier.
	Retrier Retrier
	// MaxConcurrency caps in-flight deliveries per subscription (default 256).
	MaxConcurrency int
	// Tracing, when on, opens a span per delivery as a child of the event's
	// traceparent, and the app sees that span as its parent.
	Tracing *telemetry.Tracing
}

// API is the pub/sub building block. It serves publishing over HTTP
// (RegisterHTTP) and gRPC (PublishEvent, BulkPublishEventAlpha1,
// SubscribeTopicEventsAlpha1), and consumes subscribed topics between Start
// and Stop.
type API struct {
	appID   string
	brokers Brokers
	app     AppChannel
	decl    []resources.Subscription
	log     *slog.Logger
	retrier Retrier
	tracing *telemetry.Tracing
	maxConc int

	reloadMu  sync.Mutex
	mu        sync.Mutex
	started   bool
	stopping  bool
	subs      []*subscription          // app subscriptions (declarative + programmatic)
	streaming map[string]*subscription // pubsub||topic → streaming subscription
	consumers []*consumer
	// streamConsumers are the streaming subscriptions' consumers, by key.
	streamConsumers map[string]*consumer
	runCtx          context.Context
	runCancel       context.CancelFunc
	wg              sync.WaitGroup // consumers and streaming handlers
}

// New returns the pub/sub building block.
func New(cfg Config) *API {
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	r := cfg.Retrier
	if r == nil {
		r = DefaultRetrier()
	}
	mc := cfg.MaxConcurrency
	if mc <= 0 {
		mc = 256
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &API{
		appID: cfg.AppID, brokers: cfg.Brokers, app: cfg.App, decl: cfg.Declarative,
		log: l.With("block", "pubsub"), retrier: r, maxConc: mc, tracing: cfg.Tracing,
		streaming: map[string]*subscription{}, streamConsumers: map[string]*consumer{}, runCtx: ctx, runCancel: cancel,
	}
}

// InitMetadata returns the properties a pub/sub component's Init receives:
// props plus consumerID = appID unless the component sets a non-blank one
// (so all instances of an app share one consumer group). props is not
// modified. The lead calls it before provisioning a pubsub.* component.
func InitMetadata(props map[string]string, appID string) map[string]string {
	out := make(map[string]string, len(props)+1)
	for k, v := range props {
		out[k] = v
	}
	if strings.TrimSpace(out["consumerID"]) == "" {
		out["consumerID"] = appID
	} else {
		out["consumerID"] = strings.TrimSpace(out["consumerID"])
	}
	return out
}

// resolve finds the named broker: 400 ERR_PUBSUB_NOT_CONFIGURED when there are
// none, 404 ERR_PUBSUB_EMPTY for an empty name, 404 ERR_PUBSUB_NOT_FOUND when
// unknown, 404 ERR_TOPIC_NAME_EMPTY for an empty topic.
func (a *API) resolve(name, topic string) (Broker, error) {
	if a.brokers == nil || len(a.brokers.Names()) == 0 {
		return Broker{}, errs.PubsubNotConfigured.New().WithMeta("appID", a.appID)
	}
	if name == "" {
		return Broker{}, errs.PubsubEmpty.New().WithMeta("appID", a.appID)
	}
	b, ok := a.brokers.Lookup(name)
	if !ok || b.Conn == nil {
		return Broker{}, errs.PubsubNotFound.New(name).WithMeta("appID", a.appID)
	}
	if b.Name == "" {
		b.Name = name
	}
	if topic == "" {
		return Broker{}, errs.TopicNameEmpty.New(name).WithMeta("appID", a.appID)
	}
	return b, nil
}

// Subscriptions lists the active subscriptions for /v1.0/metadata:
// declarative and programmatic ones after Start, streaming ones while their
// stream is open.
func (a *API) Subscriptions() []*runtimev1.PubsubSubscription {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*runtimev1.PubsubSubscription, 0, len(a.subs)+len(a.streaming))
	for _, s := range a.subs {
		out = append(out, s.proto())
	}
	keys := make([]string, 0, len(a.streaming))
	for k := range a.streaming {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, a.streaming[k].proto())
	}
	return out
}
