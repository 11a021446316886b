package metadata

import (
	"maps"
	"sort"
	"sync"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
)

// Version is the runtime version reported to clients. Set at build time with
// -ldflags "-X github.com/outrigger/outrigger/proxy/metadata.Version=…".
var Version = "0.1.0-dev"

// Sources are the live parts metadata reports on; any may be nil.
type Sources struct {
	Components    func() []*runtimev1.RegisteredComponents
	Subscriptions func() []*runtimev1.PubsubSubscription
	Extended      func() map[string]string // computed attributes (plugins, gossip, …)
}

// Store holds the sidecar's metadata.
type Store struct {
	appID   string
	conn    *runtimev1.AppConnectionProperties
	sources Sources
	mu      sync.RWMutex
	attrs   map[string]string
}

// New returns a Store.
func New(appID string, conn *runtimev1.AppConnectionProperties, src Sources) *Store {
	return &Store{appID: appID, conn: conn, sources: src, attrs: map[string]string{}}
}

// Set stores an extended attribute (PUT /v1.0/metadata/{key}).
func (s *Store) Set(key, value string) {
	s.mu.Lock()
	s.attrs[key] = value
	s.mu.Unlock()
}

// Get returns an extended attribute.
func (s *Store) Get(key string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.attrs[key]
}

// Response builds the GetMetadata answer.
func (s *Store) Response() *runtimev1.GetMetadataResponse {
	ext := map[string]string{"daprRuntimeVersion": Version}
	if s.sources.Extended != nil {
		maps.Copy(ext, s.sources.Extended())
	}
	s.mu.RLock()
	maps.Copy(ext, s.attrs)
	s.mu.RUnlock()
	r := &runtimev1.GetMetadataResponse{
		Id:                      s.appID,
		RuntimeVersion:          Version,
		ExtendedMetadata:        ext,
		AppConnectionProperties: s.conn,
		EnabledFeatures:         []string{},
		ActorRuntime:            &runtimev1.ActorRuntime{RuntimeStatus: runtimev1.ActorRuntime_DISABLED},
	}
	if s.sources.Components != nil {
		r.RegisteredComponents = s.sources.Components()
		sort.Slice(r.RegisteredComponents, func(i, j int) bool {
			return r.RegisteredComponents[i].Name < r.RegisteredComponents[j].Name
		})
	}
	if s.sources.Subscriptions != nil {
		r.Subscriptions = s.sources.Subscriptions()
	}
	return r
}
