package sdktest_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

// memConfig is an in-memory configuration backend shared by its stores.
type memConfig struct {
	mu    sync.Mutex
	items map[string]sdk.ConfigurationItem
	subs  map[int]func(map[string]sdk.ConfigurationItem)
	next  int
}

func (m *memConfig) set(_ context.Context, key, value, version string) error {
	m.mu.Lock()
	it := sdk.ConfigurationItem{Value: value, Version: version}
	m.items[key] = it
	subs := make([]func(map[string]sdk.ConfigurationItem), 0, len(m.subs))
	for _, f := range m.subs {
		subs = append(subs, f)
	}
	m.mu.Unlock()
	for _, f := range subs {
		f(map[string]sdk.ConfigurationItem{key: it})
	}
	return nil
}

type memConfigStore struct{ b *memConfig }

func (s memConfigStore) Init(context.Context, sdk.Metadata) error { return nil }

func (s memConfigStore) Get(_ context.Context, req *sdk.ConfigurationGetRequest) (map[string]sdk.ConfigurationItem, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	out := map[string]sdk.ConfigurationItem{}
	for k, v := range s.b.items {
		if len(req.Keys) == 0 || slices.Contains(req.Keys, k) {
			out[k] = v
		}
	}
	return out, nil
}

func (s memConfigStore) Subscribe(ctx context.Context, req *sdk.ConfigurationSubscribeRequest, ready func(), h sdk.ConfigurationHandler) error {
	s.b.mu.Lock()
	id := s.b.next
	s.b.next++
	s.b.subs[id] = func(items map[string]sdk.ConfigurationItem) {
		for k := range items {
			if len(req.Keys) == 0 || slices.Contains(req.Keys, k) {
				_ = h(ctx, items)
				return
			}
		}
	}
	s.b.mu.Unlock()
	defer func() {
		s.b.mu.Lock()
		delete(s.b.subs, id)
		s.b.mu.Unlock()
	}()
	ready()
	<-ctx.Done()
	return nil
}

func newMemConfig() *memConfig {
	return &memConfig{items: map[string]sdk.ConfigurationItem{}, subs: map[int]func(map[string]sdk.ConfigurationItem){}}
}

func TestConfigurationKitPassesMemoryStore(t *testing.T) {
	b := newMemConfig()
	sdktest.ExerciseConfigurationStore(t, func() sdk.ConfigurationStore { return memConfigStore{b} }, nil, b.set)
}
