package secrets

import (
	"context"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"

	"github.com/outrigger/outrigger/proxy/errs"
)

// GetSecret reads one secret (runtimev1.DaprServer).
func (a *API) GetSecret(ctx context.Context, in *runtimev1.GetSecretRequest) (*runtimev1.GetSecretResponse, error) {
	data, err := a.get(ctx, in.GetStoreName(), in.GetKey(), in.GetMetadata())
	if err != nil {
		a.log.Debug("secrets request failed", "method", "GetSecret", "err", err)
		return nil, errs.GRPC(err)
	}
	return &runtimev1.GetSecretResponse{Data: data}, nil
}

// GetBulkSecret reads every secret of a store the scopes allow (runtimev1.DaprServer).
func (a *API) GetBulkSecret(ctx context.Context, in *runtimev1.GetBulkSecretRequest) (*runtimev1.GetBulkSecretResponse, error) {
	all, err := a.bulk(ctx, in.GetStoreName(), in.GetMetadata())
	if err != nil {
		a.log.Debug("secrets request failed", "method", "GetBulkSecret", "err", err)
		return nil, errs.GRPC(err)
	}
	out := &runtimev1.GetBulkSecretResponse{Data: make(map[string]*runtimev1.SecretResponse, len(all))}
	for name, kv := range all {
		out.Data[name] = &runtimev1.SecretResponse{Secrets: kv}
	}
	return out, nil
}
