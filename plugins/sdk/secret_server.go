package sdk

import (
	"context"
	"errors"
	"log/slog"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// secretServer implements the SecretStore service over many instances, one
// per x-component-instance value, each created by newStore at Init.
type secretServer struct {
	componentsv1.UnimplementedSecretStoreServer

	probe     SecretStore // never Init'ed
	instances *instanceSet[SecretStore]
}

func newSecretServer(newStore func() SecretStore, logger *slog.Logger) (*secretServer, error) {
	set, err := newInstanceSet("secret store", newStore, logger)
	if err != nil {
		return nil, err
	}
	return &secretServer{probe: newStore(), instances: set}, nil
}

func (s *secretServer) register(r grpc.ServiceRegistrar) {
	componentsv1.RegisterSecretStoreServer(r, s)
}

func (s *secretServer) closeAll() error { return s.instances.closeAll() }

func (s *secretServer) instance(ctx context.Context) (SecretStore, error) {
	return s.instances.get(ctx)
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
	err := s.instances.init(ctx, req.GetMetadata().GetProperties(), func(st SecretStore, md Metadata) error { return st.Init(ctx, md) })
	if err != nil {
		return nil, err
	}
	return &componentsv1.SecretStoreInitResponse{}, nil
}

func (s *secretServer) Features(ctx context.Context, _ *componentsv1.FeaturesRequest) (*componentsv1.FeaturesResponse, error) {
	st := s.probe
	if inst, ok := s.instances.peek(ctx); ok {
		st = inst
	}
	return &componentsv1.FeaturesResponse{Features: SecretFeatures(st)}, nil
}

func (s *secretServer) Ping(ctx context.Context, _ *componentsv1.PingRequest) (*componentsv1.PingResponse, error) {
	if err := s.instances.ping(ctx); err != nil {
		return nil, err
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
