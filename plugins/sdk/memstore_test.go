package sdk_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// plainStore is the smallest valid store: no optional capabilities.
type plainStore struct {
	mu   sync.Mutex
	data map[string][]byte
}

func newPlain() sdk.StateStore { return &plainStore{data: map[string][]byte{}} }

func (s *plainStore) Init(context.Context, sdk.Metadata) error { return nil }

func (s *plainStore) Get(_ context.Context, req *sdk.GetRequest) (*sdk.GetResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[req.Key]
	return &sdk.GetResponse{Found: ok, Data: v}, nil
}

func (s *plainStore) Set(_ context.Context, req *sdk.SetRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[req.Key] = req.Value
	return nil
}

func (s *plainStore) Delete(_ context.Context, req *sdk.DeleteRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data, req.Key)
	return nil
}

// fullStore enforces etags (version counters), TTLs and transactions.
type fullStore struct {
	mu      sync.Mutex
	data    map[string]entry
	version uint64
	closed  bool
}

type entry struct {
	value   []byte
	version uint64
	expires time.Time
}

func newFull() sdk.StateStore { return &fullStore{data: map[string]entry{}} }

func (s *fullStore) ETags() {}
func (s *fullStore) TTL()   {}

func (s *fullStore) Init(_ context.Context, md sdk.Metadata) error {
	if md["fail"] == "true" {
		return fmt.Errorf("asked to fail")
	}
	return nil
}

func (s *fullStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *fullStore) lookup(key string) (entry, bool) {
	e, ok := s.data[key]
	if ok && !e.expires.IsZero() && time.Now().After(e.expires) {
		delete(s.data, key)
		return entry{}, false
	}
	return e, ok
}

func (s *fullStore) Get(_ context.Context, req *sdk.GetRequest) (*sdk.GetResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.lookup(req.Key)
	if !ok {
		return &sdk.GetResponse{}, nil
	}
	return &sdk.GetResponse{Found: true, Data: e.value, ETag: strconv.FormatUint(e.version, 10)}, nil
}

func (s *fullStore) check(key string, etag *string, concurrency string) error {
	e, ok := s.lookup(key)
	if etag == nil {
		if concurrency == sdk.FirstWrite && ok {
			return fmt.Errorf("key %q exists: %w", key, sdk.ErrETagMismatch)
		}
		return nil
	}
	v, err := strconv.ParseUint(*etag, 10, 64)
	if err != nil {
		return fmt.Errorf("etag %q: %w", *etag, sdk.ErrETagInvalid)
	}
	if !ok || v != e.version {
		return fmt.Errorf("key %q: %w", key, sdk.ErrETagMismatch)
	}
	return nil
}

func (s *fullStore) set(req *sdk.SetRequest) error {
	ttl, hasTTL, err := sdk.ParseTTL(req.Metadata)
	if err != nil {
		return err
	}
	s.version++
	e := entry{value: req.Value, version: s.version}
	if hasTTL {
		e.expires = time.Now().Add(ttl)
	}
	s.data[req.Key] = e
	return nil
}

func (s *fullStore) Set(_ context.Context, req *sdk.SetRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(req.Key, req.ETag, req.Concurrency); err != nil {
		return err
	}
	return s.set(req)
}

func (s *fullStore) Delete(_ context.Context, req *sdk.DeleteRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(req.Key, req.ETag, req.Concurrency); err != nil {
		return err
	}
	delete(s.data, req.Key)
	return nil
}

func (s *fullStore) Transact(_ context.Context, ops []sdk.TxOp, _ map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snapshot := make(map[string]entry, len(s.data))
	for k, v := range s.data {
		snapshot[k] = v
	}
	for i, op := range ops {
		var err error
		switch {
		case op.Set != nil:
			if err = s.check(op.Set.Key, op.Set.ETag, op.Set.Concurrency); err == nil {
				err = s.set(op.Set)
			}
		case op.Delete != nil:
			if err = s.check(op.Delete.Key, op.Delete.ETag, op.Delete.Concurrency); err == nil {
				delete(s.data, op.Delete.Key)
			}
		}
		if err != nil {
			s.data = snapshot
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	return nil
}
