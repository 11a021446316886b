package sdk

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
)

// SecretStore is what every secret store plugin implements (Dapr's
// secretstores.* components). Optional capabilities are one-method
// interfaces on the same value: MultiValuer, Closer, Pinger.
type SecretStore interface {
	// Init configures the store from its component metadata. It is called
	// once per component instance, before any other call.
	Init(ctx context.Context, md Metadata) error
	// Get returns the values of one secret as key → value. A store with one
	// value per secret answers {name: value}. A secret the store does not
	// hold is an error wrapping ErrSecretNotFound. md is the request
	// metadata (HTTP query metadata.<k>, gRPC metadata).
	Get(ctx context.Context, name string, md map[string]string) (map[string]string, error)
	// BulkGet returns every secret the store holds: name → key → value.
	BulkGet(ctx context.Context, md map[string]string) (map[string]map[string]string, error)
}

// MultiValuer reports whether a secret can hold several key/value pairs
// (feature "MULTIPLE_KEY_VALUES_PER_SECRET"). It is asked after Init, so the
// answer may follow the component's configuration (local.file's
// multiValued); a store without the method never advertises the feature.
type MultiValuer interface {
	MultipleKeyValuesPerSecret() bool
}

// FeatureMultipleKeyValuesPerSecret is the secret store feature, as Dapr spells it.
const FeatureMultipleKeyValuesPerSecret = "MULTIPLE_KEY_VALUES_PER_SECRET"

// ErrSecretNotFound is returned (possibly wrapped) by Get for a secret the
// store does not hold. Wire: gRPC NotFound.
var ErrSecretNotFound = errors.New("secret not found")

// SecretNotFound returns the error for a missing secret, worded as Dapr's
// stores word it ("secret <name> not found"); it wraps ErrSecretNotFound.
func SecretNotFound(name string) error { return secretNotFound(name) }

type secretNotFound string

func (e secretNotFound) Error() string        { return "secret " + string(e) + " not found" }
func (e secretNotFound) Is(target error) bool { return target == ErrSecretNotFound }

// SecretFeatures derives the features a secret store advertises from the
// optional interfaces it implements.
func SecretFeatures(s SecretStore) []string {
	f := []string{}
	if m, ok := s.(MultiValuer); ok && m.MultipleKeyValuesPerSecret() {
		f = append(f, FeatureMultipleKeyValuesPerSecret)
	}
	return f
}

// WithSecretStore serves a secret store (dapr.proto.components.v1
// SecretStore); newStore is called once per component instance (at Init)
// and once more to probe the type.
func WithSecretStore(newStore func() SecretStore) Option {
	return addService("secretstores", func(s grpc.ServiceRegistrar, log *slog.Logger) (func() error, error) {
		srv, err := newSecretServer(newStore, log)
		if err != nil {
			return nil, err
		}
		srv.register(s)
		return srv.closeAll, nil
	})
}
