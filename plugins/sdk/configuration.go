package sdk

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
)

// ConfigurationStore is what every configuration plugin implements
// (EXPERIMENTAL: served on Outrigger's own outrigger.components.v1
// ConfigurationStore service; Dapr has no pluggable configuration protocol).
// Optional: Closer, Pinger.
type ConfigurationStore interface {
	// Init configures the store from its component metadata. It is called
	// once per component instance, before any other call.
	Init(ctx context.Context, md Metadata) error
	// Get reads items by key. Keys that do not exist are left out of the
	// answer (not an error); an empty req.Keys reads every item.
	Get(ctx context.Context, req *ConfigurationGetRequest) (map[string]ConfigurationItem, error)
	// Subscribe watches req.Keys (every key when empty) until ctx ends, then
	// returns nil. It calls ready once the watch is live: a change made after
	// ready returns must reach h. h gets the changed items (a deleted key
	// has an empty Value); calls to h may come from any goroutine but the SDK
	// serialises them. An error from h means the subscriber is gone; the
	// store should stop and return. A non-nil error ends the subscription
	// and is reported to the host.
	Subscribe(ctx context.Context, req *ConfigurationSubscribeRequest, ready func(), h ConfigurationHandler) error
}

// ConfigurationItem is one configuration value.
type ConfigurationItem struct {
	Value    string
	Version  string
	Metadata map[string]string
}

// ConfigurationGetRequest reads items.
type ConfigurationGetRequest struct {
	Keys     []string // empty = every item
	Metadata map[string]string
}

// ConfigurationSubscribeRequest starts a watch.
type ConfigurationSubscribeRequest struct {
	Keys     []string // empty = every key
	Metadata map[string]string
}

// ConfigurationHandler receives changed items, by key.
type ConfigurationHandler func(ctx context.Context, items map[string]ConfigurationItem) error

// WithConfigurationStore serves a configuration store on the
// outrigger.components.v1.ConfigurationStore service; newStore is called once
// per component instance (at Init) and once more to check the factory.
func WithConfigurationStore(newStore func() ConfigurationStore) Option {
	return addService("configuration", func(s grpc.ServiceRegistrar, log *slog.Logger) (func() error, error) {
		srv, err := newConfigurationServer(newStore, log)
		if err != nil {
			return nil, err
		}
		srv.register(s)
		return srv.instances.closeAll, nil
	})
}
