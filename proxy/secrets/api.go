package secrets

import (
	"log/slog"
	"slices"
	"strings"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"

	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/resources"
)

// FeatureMultipleKeyValuesPerSecret is the secret store feature, as Dapr spells it.
const FeatureMultipleKeyValuesPerSecret = "MULTIPLE_KEY_VALUES_PER_SECRET"

// Stores is what the building block needs from the plugin host: the secret
// stores configured for this sidecar, by component name.
type Stores interface {
	Lookup(name string) (Store, bool)
	Names() []string
}

// Store is one provisioned secret store component.
type Store struct {
	Name string
	// Conn reaches the plugin; it carries x-component-instance and fails fast
	// with codes.Unavailable while the plugin is down.
	Conn grpc.ClientConnInterface
	// Features as reported by the plugin (MULTIPLE_KEY_VALUES_PER_SECRET).
	Features []string
}

// Config configures the building block.
type Config struct {
	Stores Stores
	// Scopes is the Configuration's spec.secrets.scopes.
	Scopes []resources.SecretsScope
	Logger *slog.Logger
}

// API serves the secrets API over HTTP (RegisterHTTP) and gRPC (GetSecret,
// GetBulkSecret). It is immutable after New.
type API struct {
	stores Stores
	scopes map[string]resources.SecretsScope // by store name
	log    *slog.Logger
}

// New returns the secrets building block.
func New(cfg Config) *API {
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	sc := make(map[string]resources.SecretsScope, len(cfg.Scopes))
	for _, s := range cfg.Scopes {
		sc[s.StoreName] = s // a later scope for the same store wins, as in Dapr
	}
	return &API{stores: cfg.Stores, scopes: sc, log: l.With("block", "secrets")}
}

// resolve finds the named store: 500 ERR_SECRET_STORES_NOT_CONFIGURED when
// there are none, 401 ERR_SECRET_STORE_NOT_FOUND when name is unknown.
func (a *API) resolve(name string) (componentsv1.SecretStoreClient, error) {
	if a.stores == nil || len(a.stores.Names()) == 0 {
		return nil, errs.SecretStoresNotConfig.New()
	}
	s, ok := a.stores.Lookup(name)
	if !ok || s.Conn == nil {
		return nil, errs.SecretStoreNotFound.New(name)
	}
	return componentsv1.NewSecretStoreClient(s.Conn), nil
}

// allowed applies spec.secrets.scopes exactly as Dapr does: a store without
// a scope allows everything; a non-empty allowedSecrets list decides alone;
// else a key in deniedSecrets is denied; else defaultAccess ("deny",
// case-insensitive, or allow).
func (a *API) allowed(store, key string) bool {
	s, ok := a.scopes[store]
	if !ok {
		return true
	}
	if len(s.AllowedSecrets) > 0 {
		return slices.Contains(s.AllowedSecrets, key)
	}
	if slices.Contains(s.DeniedSecrets, key) {
		return false
	}
	return !strings.EqualFold(s.DefaultAccess, "deny")
}
