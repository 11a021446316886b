// Command memstore is a complete third-party Outrigger state plugin: an
// in-memory map with etags, built on plugins/sdk. It serves under go-plugin
// when the Outrigger host launches it, or on <sockets dir>/memstore.sock
// when started by hand (so a real daprd can use it too).
package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	sdk.Serve(sdk.Name("memstore"), sdk.WithStateStore(New))
}

// Store keeps state in memory. Each component instance gets its own Store.
type Store struct {
	mu      sync.Mutex
	items   map[string]item
	version uint64
}

type item struct {
	value []byte
	etag  string
}

// New is the factory the SDK calls once per component instance.
func New() sdk.StateStore { return &Store{items: map[string]item{}} }

// ETags marks the store as enforcing etags: the SDK advertises "ETAG".
func (s *Store) ETags() {}

// Init receives the Component YAML metadata; this store needs none.
func (s *Store) Init(context.Context, sdk.Metadata) error { return nil }

// Get returns Found=false for a missing key.
func (s *Store) Get(_ context.Context, req *sdk.GetRequest) (*sdk.GetResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[req.Key]
	if !ok {
		return &sdk.GetResponse{}, nil
	}
	return &sdk.GetResponse{Found: true, Data: it.value, ETag: it.etag}, nil
}

// Set honours etags and first-write concurrency.
func (s *Store) Set(_ context.Context, req *sdk.SetRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(req.Key, req.ETag, req.Concurrency); err != nil {
		return err
	}
	s.version++
	s.items[req.Key] = item{value: req.Value, etag: strconv.FormatUint(s.version, 10)}
	return nil
}

// Delete honours etags; deleting a missing key without one is fine.
func (s *Store) Delete(_ context.Context, req *sdk.DeleteRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(req.Key, req.ETag, req.Concurrency); err != nil {
		return err
	}
	delete(s.items, req.Key)
	return nil
}

// check returns the SDK's etag errors; the SDK maps them to Dapr's gRPC codes.
func (s *Store) check(key string, etag *string, concurrency string) error {
	it, exists := s.items[key]
	switch {
	case etag == nil && concurrency == sdk.FirstWrite && exists:
		return fmt.Errorf("key %q already exists: %w", key, sdk.ErrETagMismatch)
	case etag == nil:
		return nil
	case !exists || *etag != it.etag:
		return fmt.Errorf("key %q: %w", key, sdk.ErrETagMismatch)
	}
	return nil
}
