package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

// mapStore is a correct store with etags; the broken variants below break
// one promise each.
type mapStore struct {
	mu      sync.Mutex
	data    map[string]string
	etags   map[string]string
	version int
	// defects
	ignoreETags  bool
	errOnMissing bool
}

func (s *mapStore) ETags()                                   {}
func (s *mapStore) Init(context.Context, sdk.Metadata) error { return nil }

func (s *mapStore) Get(_ context.Context, r *sdk.GetRequest) (*sdk.GetResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[r.Key]
	if !ok {
		if s.errOnMissing {
			return nil, errors.New("not found")
		}
		return &sdk.GetResponse{}, nil
	}
	return &sdk.GetResponse{Found: true, Data: []byte(v), ETag: s.etags[r.Key]}, nil
}

func (s *mapStore) check(key string, etag *string, concurrency string) error {
	if s.ignoreETags {
		return nil
	}
	cur, ok := s.etags[key]
	if etag == nil {
		if ok && concurrency == sdk.FirstWrite {
			return sdk.ErrETagMismatch
		}
		return nil
	}
	if !ok || cur != *etag {
		return sdk.ErrETagMismatch
	}
	return nil
}

func (s *mapStore) setLocked(r *sdk.SetRequest) error {
	if err := s.check(r.Key, r.ETag, r.Concurrency); err != nil {
		return err
	}
	s.version++
	s.data[r.Key], s.etags[r.Key] = string(r.Value), strconv.Itoa(s.version)
	return nil
}

func (s *mapStore) Set(_ context.Context, r *sdk.SetRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setLocked(r)
}

func (s *mapStore) Delete(_ context.Context, r *sdk.DeleteRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(r.Key, r.ETag, r.Concurrency); err != nil {
		return err
	}
	delete(s.data, r.Key)
	delete(s.etags, r.Key)
	return nil
}

// nonAtomic applies transaction operations one by one with no rollback.
type nonAtomic struct{ *mapStore }

func (s nonAtomic) Transact(ctx context.Context, ops []sdk.TxOp, _ map[string]string) error {
	for _, op := range ops {
		var err error
		if op.Set != nil {
			err = s.Set(ctx, op.Set)
		} else {
			err = s.Delete(ctx, op.Delete)
		}
		if err != nil {
			return fmt.Errorf("tx: %w", err)
		}
	}
	return nil
}

func newMap() *mapStore { return &mapStore{data: map[string]string{}, etags: map[string]string{}} }

var brokenStores = map[string]struct {
	factory  func() sdk.StateStore
	wantFail string // subtest that must fail
}{
	"lying-etag":      {func() sdk.StateStore { s := newMap(); s.ignoreETags = true; return s }, "--- FAIL: TestBrokenStoreHelper/etags"},
	"error-on-miss":   {func() sdk.StateStore { s := newMap(); s.errOnMissing = true; return s }, "--- FAIL: TestBrokenStoreHelper/missing_keys"},
	"non-atomic-tx":   {func() sdk.StateStore { return nonAtomic{newMap()} }, "--- FAIL: TestBrokenStoreHelper/transactions"},
	"lost-increments": {func() sdk.StateStore { s := newMap(); s.ignoreETags = true; return s }, "--- FAIL: TestBrokenStoreHelper/concurrent_writers"},
}

const brokenEnv = "SDKTEST_BROKEN_STORE"

func TestCorrectStorePasses(t *testing.T) {
	sdktest.ExerciseStateStore(t, func() sdk.StateStore { return newMap() }, nil)
}

// TestBrokenStoreHelper runs the kit on one broken store; it only does
// anything when TestKitCatchesBrokenStores starts it in a child process.
func TestBrokenStoreHelper(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("helper: runs only as a child of TestKitCatchesBrokenStores")
	}
	sdktest.ExerciseStateStore(t, brokenStores[name].factory, nil)
}

// TestKitCatchesBrokenStores: each defect makes the kit fail in the subtest
// for that capability (the kit itself can fail).
func TestKitCatchesBrokenStores(t *testing.T) {
	for name, bs := range brokenStores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStoreHelper$", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("conformance passed a broken store (%s):\n%s", name, out)
			}
			if !strings.Contains(string(out), bs.wantFail) {
				t.Fatalf("want %q in the output:\n%s", bs.wantFail, out)
			}
		})
	}
}
