package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// secretServer implements the SecretStore service over many instances, one
// per x-component-instance value, each created by newStore at Init.
type secretServer struct {
	componentsv1.UnimplementedSecretStoreServer

	newStore func() SecretStore
	probe    SecretStore // never Init'ed
	logger   *slog.Logger

	mu        sync.RWMutex
	instances map[string]SecretStore
}

func newSecretServer(newStore func() SecretStore, logger *slog.Logger) (*secretServer, error) {
	probe := newStore()
	if probe == nil {
		return nil, errors.New("secret store factory returned nil")
	}
	return &secretServer{newStore: newStore, probe: probe, logger: logger, instances: map[string]SecretStore{}}, nil
}

func (s *secretServer) register(r grpc.ServiceRegistrar) {
	componentsv1.RegisterSecretStoreServer(r, s)
}

func (s *secretServer) closeAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, st := range s.instances {
		if c, ok := st.(Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("instance %q: %w", name, err))
			}
		}
		delete(s.instances, name)
	}
	return errors.Join(errs...)
}

func (s *secretServer) instance(ctx context.Context) (SecretStore, error) {
	name := instanceName(ctx)
	s.mu.RLock()
	st, ok := s.instances[name]
	s.mu.RUnlock()
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition,
			"secret store instance %q is not initialised: call Init first (instance named by gRPC metadata %s)",
			name, InstanceMetadataKey)
	}
	return st, nil
}

// secretWireError maps a secret store error: ErrSecretNotFound → NotFound,
// everything else as for any component.
func secretWireError(err error) error {
	if _, ok := status.FromError(err); !ok && errors.Is(err, ErrSecretNotFound) {
		return status.Error(codes.NotFound, err.Error())
	}
	return wireError(err)
}

func (s *secretServer) Init(ctx context.Context, req *componentsv1.SecretStoreInitRequest) (*componentsv1.SecretStoreInitResponse, error) {
	name := instanceName(ctx)
	st := s.newStore()
	if st == nil {
		return nil, status.Error(codes.Internal, "secret store factory returned nil")
	}
	md := Metadata(req.GetMetadata().GetProperties())
	if md == nil {
		md = Metadata{}
	}
	if err := st.Init(ctx, md); err != nil {
		if c, ok := st.(Closer); ok {
			_ = c.Close()
		}
		s.logger.Error("init failed", "instance", name, "err", err)
		return nil, secretWireError(fmt.Errorf("init %q: %w", name, err))
	}
	s.mu.Lock()
	old := s.instances[name]
	s.instances[name] = st
	s.mu.Unlock()
	if c, ok := old.(Closer); ok && old != nil {
		if err := c.Close(); err != nil {
			s.logger.Warn("closing replaced instance", "instance", name, "err", err)
		}
	}
	s.logger.Info("initialised", "instance", name, "features", SecretFeatures(st))
	return &componentsv1.SecretStoreInitResponse{}, nil
}

func (s *secretServer) Features(ctx context.Context, _ *componentsv1.FeaturesRequest) (*componentsv1.FeaturesResponse, error) {
	st := s.probe
	s.mu.RLock()
	if inst, ok := s.instances[instanceName(ctx)]; ok {
		st = inst
	}
	s.mu.RUnlock()
	return &componentsv1.FeaturesResponse{Features: SecretFeatures(st)}, nil
}

func (s *secretServer) Ping(ctx context.Context, _ *componentsv1.PingRequest) (*componentsv1.PingResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := st.(Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return nil, secretWireError(fmt.Errorf("ping: %w", err))
		}
	}
	return &componentsv1.PingResponse{}, nil
}

func (s *secretServer) Get(ctx context.Context, req *componentsv1.GetSecretRequest) (*componentsv1.GetSecretResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	data, err := st.Get(ctx, req.GetKey(), req.GetMetadata())
	if err != nil {
		return nil, secretWireError(err)
	}
	return &componentsv1.GetSecretResponse{Data: data}, nil
}

func (s *secretServer) BulkGet(ctx context.Context, req *componentsv1.BulkGetSecretRequest) (*componentsv1.BulkGetSecretResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	all, err := st.BulkGet(ctx, req.GetMetadata())
	if err != nil {
		return nil, secretWireError(err)
	}
	out := &componentsv1.BulkGetSecretResponse{Data: make(map[string]*componentsv1.SecretResponse, len(all))}
	for name, kv := range all {
		out.Data[name] = &componentsv1.SecretResponse{Secrets: kv}
	}
	return out, nil
}
