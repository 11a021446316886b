package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/grpc"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// configurationServer implements outrigger.components.v1.ConfigurationStore.
type configurationServer struct {
	ocomponentsv1.UnimplementedConfigurationStoreServer
	instances *instanceSet[ConfigurationStore]
	logger    *slog.Logger
}

func newConfigurationServer(newStore func() ConfigurationStore, logger *slog.Logger) (*configurationServer, error) {
	set, err := newInstanceSet("configuration store", newStore, logger)
	if err != nil {
		return nil, err
	}
	return &configurationServer{instances: set, logger: logger}, nil
}

func (s *configurationServer) register(r grpc.ServiceRegistrar) {
	ocomponentsv1.RegisterConfigurationStoreServer(r, s)
}

func (s *configurationServer) Init(ctx context.Context, req *ocomponentsv1.ConfigurationStoreInitRequest) (*ocomponentsv1.ConfigurationStoreInitResponse, error) {
	err := s.instances.init(ctx, req.GetMetadata().GetProperties(), func(st ConfigurationStore, md Metadata) error {
		return st.Init(ctx, md)
	})
	if err != nil {
		return nil, err
	}
	return &ocomponentsv1.ConfigurationStoreInitResponse{}, nil
}

func (s *configurationServer) Features(context.Context, *ocomponentsv1.ConfigurationStoreFeaturesRequest) (*ocomponentsv1.ConfigurationStoreFeaturesResponse, error) {
	return &ocomponentsv1.ConfigurationStoreFeaturesResponse{Features: []string{}}, nil
}

func (s *configurationServer) Ping(ctx context.Context, _ *ocomponentsv1.ConfigurationStorePingRequest) (*ocomponentsv1.ConfigurationStorePingResponse, error) {
	if err := s.instances.ping(ctx); err != nil {
		return nil, err
	}
	return &ocomponentsv1.ConfigurationStorePingResponse{}, nil
}

func (s *configurationServer) Get(ctx context.Context, req *ocomponentsv1.ConfigurationStoreGetRequest) (*ocomponentsv1.ConfigurationStoreGetResponse, error) {
	st, err := s.instances.get(ctx)
	if err != nil {
		return nil, err
	}
	items, err := st.Get(ctx, &ConfigurationGetRequest{Keys: req.GetKeys(), Metadata: req.GetMetadata()})
	if err != nil {
		return nil, wireError(err)
	}
	return &ocomponentsv1.ConfigurationStoreGetResponse{Items: toWireItems(items)}, nil
}

func (s *configurationServer) Subscribe(req *ocomponentsv1.ConfigurationStoreSubscribeRequest, stream grpc.ServerStreamingServer[ocomponentsv1.ConfigurationStoreSubscribeResponse]) error {
	st, err := s.instances.get(stream.Context())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()

	var (
		mu      sync.Mutex // serialises Send
		isReady bool
		sendErr error
	)
	// send must be called with mu held.
	send := func(items map[string]*ocomponentsv1.ConfigurationItem) error {
		if sendErr != nil {
			return sendErr
		}
		if err := stream.Send(&ocomponentsv1.ConfigurationStoreSubscribeResponse{Items: items}); err != nil {
			sendErr = fmt.Errorf("subscriber gone: %w", err)
			cancel()
		}
		return sendErr
	}
	markReady := func() error {
		if isReady {
			return sendErr
		}
		isReady = true
		return send(nil)
	}
	ready := func() {
		mu.Lock()
		defer mu.Unlock()
		_ = markReady()
	}
	h := func(_ context.Context, items map[string]ConfigurationItem) error {
		mu.Lock()
		defer mu.Unlock()
		if err := markReady(); err != nil {
			return err
		}
		if len(items) == 0 {
			return nil
		}
		return send(toWireItems(items))
	}
	err = st.Subscribe(ctx, &ConfigurationSubscribeRequest{Keys: req.GetKeys(), Metadata: req.GetMetadata()}, ready, h)
	if stream.Context().Err() != nil {
		return nil // the subscriber closed the stream: unsubscribed
	}
	if err != nil {
		s.logger.Warn("subscription ended", "instance", instanceName(stream.Context()), "err", err)
		return wireError(fmt.Errorf("subscribe: %w", err))
	}
	return nil
}

func toWireItems(items map[string]ConfigurationItem) map[string]*ocomponentsv1.ConfigurationItem {
	out := make(map[string]*ocomponentsv1.ConfigurationItem, len(items))
	for k, v := range items {
		out[k] = &ocomponentsv1.ConfigurationItem{Value: v.Value, Version: v.Version, Metadata: v.Metadata}
	}
	return out
}
