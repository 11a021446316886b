package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// instanceSet holds the component values of one category, one per
// x-component-instance name, created at Init. The configuration and lock
// servers share it (the state server predates it and keeps its own map).
type instanceSet[T any] struct {
	kind   string // "configuration store", "lock store": for messages
	newT   func() T
	isNil  func(T) bool
	logger *slog.Logger

	mu    sync.RWMutex
	items map[string]T
}

func newInstanceSet[T comparable](kind string, newT func() T, logger *slog.Logger) (*instanceSet[T], error) {
	var zero T
	if newT() == zero {
		return nil, fmt.Errorf("%s factory returned nil", kind)
	}
	return &instanceSet[T]{
		kind: kind, newT: newT, logger: logger, items: map[string]T{},
		isNil: func(v T) bool { return v == zero },
	}, nil
}

// get returns the instance the call is for.
func (s *instanceSet[T]) get(ctx context.Context) (T, error) {
	name := instanceName(ctx)
	s.mu.RLock()
	v, ok := s.items[name]
	s.mu.RUnlock()
	if !ok {
		return v, status.Errorf(codes.FailedPrecondition,
			"%s instance %q is not initialised: call Init first (instance named by gRPC metadata %s)",
			s.kind, name, InstanceMetadataKey)
	}
	return v, nil
}

// init creates, initialises and records the instance named in ctx,
// replacing (and closing) an earlier one of the same name.
func (s *instanceSet[T]) init(ctx context.Context, props map[string]string, initFn func(T, Metadata) error) error {
	name := instanceName(ctx)
	v := s.newT()
	if s.isNil(v) {
		return status.Errorf(codes.Internal, "%s factory returned nil", s.kind)
	}
	md := Metadata(props)
	if md == nil {
		md = Metadata{}
	}
	if err := initFn(v, md); err != nil {
		closeValue(v)
		s.logger.Error("init failed", "instance", name, "err", err)
		return wireError(fmt.Errorf("init %q: %w", name, err))
	}
	s.mu.Lock()
	old, had := s.items[name]
	s.items[name] = v
	s.mu.Unlock()
	if had {
		if c, ok := any(old).(Closer); ok {
			if err := c.Close(); err != nil {
				s.logger.Warn("closing replaced instance", "instance", name, "err", err)
			}
		}
	}
	s.logger.Info("initialised", "instance", name, "kind", s.kind)
	return nil
}

// ping calls Ping on the instance when it is a Pinger.
func (s *instanceSet[T]) ping(ctx context.Context) error {
	v, err := s.get(ctx)
	if err != nil {
		return err
	}
	if p, ok := any(v).(Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return wireError(fmt.Errorf("ping: %w", err))
		}
	}
	return nil
}

func (s *instanceSet[T]) closeAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, v := range s.items {
		if c, ok := any(v).(Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("instance %q: %w", name, err))
			}
		}
		delete(s.items, name)
	}
	return errors.Join(errs...)
}

func closeValue(v any) {
	if c, ok := v.(io.Closer); ok {
		_ = c.Close()
	}
}

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
