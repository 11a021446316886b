package secrets

import (
	"context"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/errs"
)

// pluginMessage is the text to report for a plugin error: the status message
// (for Unavailable, the host's message naming the plugin).
func pluginMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// get reads one secret after the store and scope checks.
func (a *API) get(ctx context.Context, store, key string, md map[string]string) (map[string]string, error) {
	c, err := a.resolve(store)
	if err != nil {
		return nil, err
	}
	if !a.allowed(store, key) {
		return nil, errs.SecretPermissionDenied.New(key, store)
	}
	resp, err := c.Get(ctx, &componentsv1.GetSecretRequest{Key: key, Metadata: md})
	if err != nil {
		return nil, errs.SecretGet.New(key, store, pluginMessage(err))
	}
	return resp.GetData(), nil
}

// bulk reads every secret of a store, dropping those the scopes deny.
func (a *API) bulk(ctx context.Context, store string, md map[string]string) (map[string]map[string]string, error) {
	c, err := a.resolve(store)
	if err != nil {
		return nil, err
	}
	resp, err := c.BulkGet(ctx, &componentsv1.BulkGetSecretRequest{Metadata: md})
	if err != nil {
		return nil, errs.SecretBulkGet.New(store, pluginMessage(err))
	}
	out := make(map[string]map[string]string, len(resp.GetData()))
	for name, s := range resp.GetData() {
		if !a.allowed(store, name) {
			a.log.Debug("secret left out of bulk answer by secrets.scopes", "store", store, "secret", name)
			continue
		}
		kv := s.GetSecrets()
		if kv == nil {
			kv = map[string]string{}
		}
		out[name] = kv
	}
	return out, nil
}
