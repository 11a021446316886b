package state

import (
	"log/slog"
	"reflect"
	"slices"
	"sync"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"

	"github.com/outrigger/outrigger/proxy/errs"
)

// Feature names a state store advertises (componentsv1 FeaturesResponse).
const (
	FeatureETag          = "ETAG"
	FeatureTransactional = "TRANSACTIONAL"
	FeatureQueryAPI      = "QUERY_API"
	FeatureTTL           = "TTL"
)

// Stores is what the building block needs from the plugin host: the state
// stores configured for this sidecar, by component name.
type Stores interface {
	Lookup(name string) (Store, bool)
	Names() []string
}

// Store is one provisioned state store component.
type Store struct {
	Name string
	// Conn reaches the plugin; it carries x-component-instance and fails fast
	// with codes.Unavailable while the plugin is down.
	Conn grpc.ClientConnInterface
	// Features as reported by the plugin (ETAG, TRANSACTIONAL, QUERY_API, …).
	Features []string
	// KeyPrefix is the component's metadata keyPrefix: "" or "appid"
	// (default), "name", "namespace", "none", or a literal prefix.
	KeyPrefix string
	// ActorStateStore is the component's actorStateStore flag; accepted,
	// not used by this block yet.
	ActorStateStore bool
}

// HasFeature reports whether the store advertises feature f.
func (s Store) HasFeature(f string) bool { return slices.Contains(s.Features, f) }

// Config configures the building block.
type Config struct {
	AppID string
	// Namespace is the NAMESPACE environment value, used by the
	// "namespace" key prefix strategy.
	Namespace string
	Stores    Stores
	Logger    *slog.Logger
}

// API serves the state API over HTTP (RegisterHTTP) and gRPC (it implements
// grpcapi.StateServer).
type API struct {
	appID     string
	namespace string
	stores    Stores
	log       *slog.Logger

	maxMu   sync.Mutex
	maxSize map[maxKey]int64 // MultiMaxSize answers, per store connection
}

type maxKey struct {
	name string
	conn any
}

// New returns the state building block.
func New(cfg Config) *API {
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &API{appID: cfg.AppID, namespace: cfg.Namespace, stores: cfg.Stores, log: l.With("block", "state"), maxSize: map[maxKey]int64{}}
}

// target is a resolved store plus the clients built on its connection.
type target struct {
	Store
	prefix string // "" = keys are not prefixed
	state  componentsv1.StateStoreClient
}

// resolve finds the named store: 500 ERR_STATE_STORE_NOT_CONFIGURED when there
// are none, 400 ERR_STATE_STORE_NOT_FOUND when name is unknown, 400
// ERR_MALFORMED_REQUEST when the store's literal keyPrefix contains "||".
func (a *API) resolve(name string) (*target, error) {
	if a.stores == nil || len(a.stores.Names()) == 0 {
		return nil, errs.StateStoreNotConfigured.New().WithMeta("appID", a.appID)
	}
	s, ok := a.stores.Lookup(name)
	if !ok || s.Conn == nil {
		return nil, errs.StateStoreNotFound.New(name).WithMeta("appID", a.appID)
	}
	p, err := keyPrefix(s.KeyPrefix, s.Name, a.appID, a.namespace)
	if err != nil {
		return nil, err
	}
	if s.Name == "" {
		s.Name = name
	}
	return &target{Store: s, prefix: p, state: componentsv1.NewStateStoreClient(s.Conn)}, nil
}

// cachedMax returns a remembered MultiMaxSize answer for t's connection.
func (a *API) cachedMax(t *target) (int64, bool) {
	k, ok := t.maxKey()
	if !ok {
		return 0, false
	}
	a.maxMu.Lock()
	defer a.maxMu.Unlock()
	v, ok := a.maxSize[k]
	return v, ok
}

func (a *API) rememberMax(t *target, v int64) {
	k, ok := t.maxKey()
	if !ok {
		return
	}
	a.maxMu.Lock()
	defer a.maxMu.Unlock()
	a.maxSize[k] = v
}

// maxKey identifies the plugin connection; only pointer connections (whose
// identity is stable) are cached.
func (t *target) maxKey() (maxKey, bool) {
	if t.Conn == nil || reflect.TypeOf(t.Conn).Kind() != reflect.Pointer {
		return maxKey{}, false
	}
	return maxKey{name: t.Name, conn: t.Conn}, true
}
