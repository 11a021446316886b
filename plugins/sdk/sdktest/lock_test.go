package sdktest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

// memLocks is an in-memory lock backend shared by two stores.
type memLocks struct {
	mu     sync.Mutex
	leases map[string]lease
	// defects, for proving the kit fails broken stores:
	ignoreOwner, noExpiry bool
}

type lease struct {
	owner string
	until time.Time
}

type memLockStore struct{ b *memLocks }

func (s memLockStore) Init(context.Context, sdk.Metadata) error { return nil }

func (s memLockStore) TryLock(_ context.Context, r *sdk.TryLockRequest) (bool, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if l, ok := s.b.leases[r.ResourceID]; ok && (s.b.noExpiry || time.Now().Before(l.until)) {
		return false, nil
	}
	s.b.leases[r.ResourceID] = lease{owner: r.LockOwner, until: time.Now().Add(time.Duration(r.ExpiryInSeconds) * time.Second)}
	return true, nil
}

func (s memLockStore) Unlock(_ context.Context, r *sdk.UnlockRequest) (sdk.UnlockStatus, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	l, ok := s.b.leases[r.ResourceID]
	if !ok || (!s.b.noExpiry && !time.Now().Before(l.until)) {
		return sdk.LockDoesNotExist, nil
	}
	if l.owner != r.LockOwner && !s.b.ignoreOwner {
		return sdk.LockBelongsToOthers, nil
	}
	delete(s.b.leases, r.ResourceID)
	return sdk.UnlockSuccess, nil
}

func newMemLocks() *memLocks { return &memLocks{leases: map[string]lease{}} }

func TestLockKitPassesMemoryStore(t *testing.T) {
	b := newMemLocks()
	f := func() sdk.LockStore { return memLockStore{b} }
	sdktest.ExerciseLock(t, f, f, nil)
}

var brokenLocks = map[string]struct {
	backend  func() *memLocks
	wantFail string
}{
	"ignores-owner":     {func() *memLocks { b := newMemLocks(); b.ignoreOwner = true; return b }, "--- FAIL: TestBrokenLockHelper/unlock_statuses"},
	"never-expires":     {func() *memLocks { b := newMemLocks(); b.noExpiry = true; return b }, "--- FAIL: TestBrokenLockHelper/expiry_lets_another_owner_in"},
	"separate-backends": {nil, "--- FAIL: TestBrokenLockHelper/one_winner_among_contenders"},
}

const brokenLockEnv = "SDKTEST_BROKEN_LOCK"

// TestBrokenLockHelper runs the kit on one broken lock store; it only does
// anything when TestLockKitCatchesBrokenStores starts it in a child process.
func TestBrokenLockHelper(t *testing.T) {
	name := os.Getenv(brokenLockEnv)
	if name == "" {
		t.Skip("helper: runs only as a child of TestLockKitCatchesBrokenStores")
	}
	if bl := brokenLocks[name]; bl.backend != nil {
		b := bl.backend()
		f := func() sdk.LockStore { return memLockStore{b} }
		sdktest.ExerciseLock(t, f, f, nil)
		return
	}
	// Two clients that do not share a backend: both win.
	a, b := newMemLocks(), newMemLocks()
	sdktest.ExerciseLock(t, func() sdk.LockStore { return memLockStore{a} }, func() sdk.LockStore { return memLockStore{b} }, nil)
}

func TestLockKitCatchesBrokenStores(t *testing.T) {
	for name, bl := range brokenLocks {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenLockHelper$", "-test.v")
			cmd.Env = append(os.Environ(), brokenLockEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("conformance passed a broken lock store (%s):\n%s", name, out)
			}
			if !strings.Contains(string(out), bl.wantFail) {
				t.Fatalf("want %q in the output:\n%s", bl.wantFail, out)
			}
		})
	}
}
