package configuration

import (
	"context"
	"errors"
	"io"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
	"github.com/outrigger/outrigger/proxy/errs"
)

func (a *API) grpcErr(method string, err error) error {
	a.log.Debug("configuration request failed", "method", method, "err", err)
	return errs.GRPC(err)
}

func toCommon(items map[string]*ocomponentsv1.ConfigurationItem) map[string]*commonv1.ConfigurationItem {
	out := make(map[string]*commonv1.ConfigurationItem, len(items))
	for k, v := range items {
		out[k] = &commonv1.ConfigurationItem{Value: v.GetValue(), Version: v.GetVersion(), Metadata: v.GetMetadata()}
	}
	return out
}

// GetConfiguration reads items.
func (a *API) GetConfiguration(ctx context.Context, in *runtimev1.GetConfigurationRequest) (*runtimev1.GetConfigurationResponse, error) {
	s, err := a.resolve(in.GetStoreName())
	if err != nil {
		return nil, a.grpcErr("GetConfiguration", err)
	}
	items, err := a.get(ctx, s, in.GetKeys(), in.GetMetadata())
	if err != nil {
		return nil, a.grpcErr("GetConfiguration", err)
	}
	return &runtimev1.GetConfigurationResponse{Items: toCommon(items)}, nil
}

// GetConfigurationAlpha1 is GetConfiguration.
func (a *API) GetConfigurationAlpha1(ctx context.Context, in *runtimev1.GetConfigurationRequest) (*runtimev1.GetConfigurationResponse, error) {
	return a.GetConfiguration(ctx, in)
}

// configStream is what both generated server stream types offer.
type configStream interface {
	Send(*runtimev1.SubscribeConfigurationResponse) error
	Context() context.Context
}

// SubscribeConfiguration streams changes: the first message carries the
// subscription id only, later ones the id and the changed items. It ends
// when the caller goes away or calls UnsubscribeConfiguration with the id.
func (a *API) SubscribeConfiguration(in *runtimev1.SubscribeConfigurationRequest, stream runtimev1.Dapr_SubscribeConfigurationServer) error {
	return a.subscribeStream(in, stream)
}

// SubscribeConfigurationAlpha1 is SubscribeConfiguration.
func (a *API) SubscribeConfigurationAlpha1(in *runtimev1.SubscribeConfigurationRequest, stream runtimev1.Dapr_SubscribeConfigurationAlpha1Server) error {
	return a.subscribeStream(in, stream)
}

func (a *API) subscribeStream(in *runtimev1.SubscribeConfigurationRequest, stream configStream) error {
	const method = "SubscribeConfiguration"
	s, err := a.resolve(in.GetStoreName())
	if err != nil {
		return a.grpcErr(method, err)
	}
	keys := sortedKeys(in.GetKeys())
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	ps, err := open(ctx, s, keys, in.GetMetadata())
	if err != nil {
		return a.grpcErr(method, errs.ConfigurationSubscribe.New(keys, s.Name, pluginMessage(err)))
	}
	sub := a.add(s.Name, cancel)
	defer a.remove(sub.id)
	if err := stream.Send(&runtimev1.SubscribeConfigurationResponse{Id: sub.id}); err != nil {
		return err
	}
	for {
		m, err := ps.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil // the caller left or unsubscribed
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("the store ended the subscription")
			}
			return a.grpcErr(method, errs.ConfigurationSubscribe.New(keys, s.Name, pluginMessage(err)))
		}
		if len(m.GetItems()) == 0 {
			continue
		}
		if err := stream.Send(&runtimev1.SubscribeConfigurationResponse{Id: sub.id, Items: toCommon(m.GetItems())}); err != nil {
			return nil // the caller is gone
		}
	}
}

// UnsubscribeConfiguration ends the subscription with the given id (HTTP
// or gRPC). An unknown id is {ok:false, message}, not an error, as in Dapr.
func (a *API) UnsubscribeConfiguration(_ context.Context, in *runtimev1.UnsubscribeConfigurationRequest) (*runtimev1.UnsubscribeConfigurationResponse, error) {
	if err := a.unsubscribe(in.GetId(), ""); err != nil {
		return &runtimev1.UnsubscribeConfigurationResponse{Message: errs.ConfigurationUnsubscribe.New(in.GetId(), err.Error()).Message}, nil
	}
	return &runtimev1.UnsubscribeConfigurationResponse{Ok: true}, nil
}

// UnsubscribeConfigurationAlpha1 is UnsubscribeConfiguration.
func (a *API) UnsubscribeConfigurationAlpha1(ctx context.Context, in *runtimev1.UnsubscribeConfigurationRequest) (*runtimev1.UnsubscribeConfigurationResponse, error) {
	return a.UnsubscribeConfiguration(ctx, in)
}
