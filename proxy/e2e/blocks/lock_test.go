package blockse2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

const lockStore = "lockstore"

// Unlock statuses (numeric on HTTP, names in the Go SDK).
const (
	unlockSuccess         = 0
	unlockDoesNotExist    = 1
	unlockBelongsToOthers = 2
)

var unlockStatusNames = map[int]string{0: "SUCCESS", 1: "LOCK_DOES_NOT_EXIST", 2: "LOCK_BELONGS_TO_OTHERS", 3: "INTERNAL_ERROR"}

// locker is one way of calling the lock API on one sidecar: the Go SDK or
// plain HTTP.
type locker struct {
	name   string
	sc     *sidecar
	client dapr.Client // nil: HTTP
}

func (l locker) tryLock(t *testing.T, resource, owner string, expiry int32) bool {
	t.Helper()
	if l.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := l.client.TryLockAlpha1(ctx, lockStore, &dapr.LockRequest{ResourceID: resource, LockOwner: owner, ExpiryInSeconds: expiry})
		if err != nil {
			t.Errorf("%s: TryLockAlpha1(%s, %s): %v", l.name, resource, owner, err)
			return false
		}
		return r.Success
	}
	r := do(t, http.MethodPost, l.sc.URL("/v1.0-alpha1/lock/"+lockStore),
		map[string]any{"resourceId": resource, "lockOwner": owner, "expiryInSeconds": expiry})
	var body map[string]any
	decode(t, "POST lock", r, &body)
	success, ok := body["success"].(bool)
	if r.status != http.StatusOK || !ok {
		t.Errorf("%s: POST /v1.0-alpha1/lock/%s = %d %s, want 200 {\"success\":bool} (unpopulated field emitted)", l.name, lockStore, r.status, r.body)
	}
	return success
}

func (l locker) unlock(t *testing.T, resource, owner string) int {
	t.Helper()
	if l.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := l.client.UnlockAlpha1(ctx, lockStore, &dapr.UnlockRequest{ResourceID: resource, LockOwner: owner})
		if err != nil {
			t.Errorf("%s: UnlockAlpha1(%s, %s): %v", l.name, resource, owner, err)
			return -1
		}
		if r.Status != unlockStatusNames[int(r.StatusCode)] {
			t.Errorf("%s: UnlockAlpha1 status %d named %q", l.name, r.StatusCode, r.Status)
		}
		return int(r.StatusCode)
	}
	r := do(t, http.MethodPost, l.sc.URL("/v1.0-alpha1/unlock/"+lockStore), map[string]any{"resourceId": resource, "lockOwner": owner})
	var body map[string]any
	decode(t, "POST unlock", r, &body)
	st, ok := body["status"].(float64) // numeric, as Dapr
	if r.status != http.StatusOK || !ok {
		t.Errorf("%s: POST /v1.0-alpha1/unlock/%s = %d %s, want 200 {\"status\":<number>}", l.name, lockStore, r.status, r.body)
		return -1
	}
	return int(st)
}

// lockBackends are the lock stores tested: each returns the component two
// sidecars share.
var lockBackends = []struct {
	name string
	comp func(t *testing.T, appID string) component
}{
	{"redis", func(t *testing.T, appID string) component {
		rc := needRedis(t)
		delRedisKeys(t, rc, "lock||"+appID+"||*")
		return component{name: lockStore, typ: "lock.redis", md: map[string]string{"redisHost": redisAddr}}
	}},
	{"sqlite", func(t *testing.T, _ string) component {
		return component{name: lockStore, typ: "lock.sqlite", md: map[string]string{
			"connectionString": filepath.Join(t.TempDir(), "locks.db")}}
	}},
}

// TestLock runs the seed's lock example against each backend with two
// sidecars of one app (several instances of one service) sharing the store.
func TestLock(t *testing.T) {
	for _, b := range lockBackends {
		t.Run(b.name, func(t *testing.T) {
			appID := e2etest.Uniq("lock-e2e-")
			dir := writeComponents(t, b.comp(t, appID))
			var scs [2]*sidecar
			var wg sync.WaitGroup
			for i := range scs {
				wg.Add(1)
				go func() { defer wg.Done(); scs[i] = startSidecar(t, sidecarOpts{appID: appID, resources: dir}) }()
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			var lockers []locker
			for i, sc := range scs {
				lockers = append(lockers,
					locker{name: fmt.Sprintf("sidecar%d/sdk", i+1), sc: sc, client: sc.Client(t)},
					locker{name: fmt.Sprintf("sidecar%d/http", i+1), sc: sc})
			}
			t.Run("one winner per lease", func(t *testing.T) { testContention(t, lockers) })
			t.Run("one instance processes each job", func(t *testing.T) { testJobs(t, lockers) })
			t.Run("expired lease", func(t *testing.T) { testExpiry(t, lockers) })
			t.Run("malformed", func(t *testing.T) { testLockErrors(t, scs[0]) })
		})
	}
}

// testContention: 16 owners race for one resource through both sidecars
// (SDK and HTTP); exactly one wins each lease. Only the winner can release
// it, after which the next round has again exactly one winner.
func testContention(t *testing.T, lockers []locker) {
	resource := e2etest.Uniq("res-")
	const perLocker = 4
	for round := range 3 {
		type win struct {
			l     locker
			owner string
		}
		var mu sync.Mutex
		var wins []win
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, l := range lockers {
			for i := range perLocker {
				owner := fmt.Sprintf("%s-r%d-%d", l.name, round, i)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if l.tryLock(t, resource, owner, 30) {
						mu.Lock()
						wins = append(wins, win{l, owner})
						mu.Unlock()
					}
				}()
			}
		}
		close(start)
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("round %d: %d of %d contenders got the lock, want exactly 1: %v", round, len(wins), perLocker*len(lockers), wins)
		}
		w := wins[0]
		// Everyone else, on either sidecar, is refused while the lease holds,
		// and cannot release it.
		for _, l := range lockers {
			if l.tryLock(t, resource, "late-"+l.name, 30) {
				t.Fatalf("round %d: %s got a held lock", round, l.name)
			}
			if st := l.unlock(t, resource, "not-the-owner"); st != unlockBelongsToOthers {
				t.Errorf("round %d: %s unlock by a non-owner = %d, want %d LOCK_BELONGS_TO_OTHERS", round, l.name, st, unlockBelongsToOthers)
			}
		}
		// The owner may release it through the other sidecar: the lease is
		// the store's, not the sidecar's.
		other := lockers[(indexOf(lockers, w.l)+2)%len(lockers)]
		if st := other.unlock(t, resource, w.owner); st != unlockSuccess {
			t.Fatalf("round %d: owner's unlock via %s = %d, want %d SUCCESS", round, other.name, st, unlockSuccess)
		}
	}
}

func indexOf(ls []locker, l locker) int {
	for i := range ls {
		if ls[i].name == l.name {
			return i
		}
	}
	return -1
}

// testJobs is the seed's example: every instance walks the same job list
// and processes a job only when it takes that job's lock; each job is
// processed by exactly one instance.
func testJobs(t *testing.T, lockers []locker) {
	batch := e2etest.Uniq("batch-")
	const jobs = 8
	var mu sync.Mutex
	processedBy := map[int][]string{}
	var wg sync.WaitGroup
	for _, l := range lockers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if l.tryLock(t, fmt.Sprintf("%s-job%d", batch, j), "worker-"+l.name, 60) {
					mu.Lock()
					processedBy[j] = append(processedBy[j], l.name)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for j := range jobs {
		if len(processedBy[j]) != 1 {
			t.Errorf("job %d processed by %v, want exactly one instance", j, processedBy[j])
		}
	}
}

// testExpiry: a lease that expires can be taken by another owner through the
// other sidecar, and the first owner can no longer release it.
func testExpiry(t *testing.T, lockers []locker) {
	a, b := lockers[0], lockers[3] // sidecar1/sdk, sidecar2/http
	resource := e2etest.Uniq("expiring-")
	if !a.tryLock(t, resource, "owner-a", 1) {
		t.Fatalf("owner-a could not take a free lock")
	}
	taken := time.Now()
	if b.tryLock(t, resource, "owner-b", 10) {
		t.Fatalf("owner-b took the lock while owner-a's 1 s lease held")
	}
	e2etest.WaitFor(t, 10*time.Second, "owner-b to take the expired lease", func() bool {
		return b.tryLock(t, resource, "owner-b", 10)
	})
	if held := time.Since(taken); held < 900*time.Millisecond {
		t.Errorf("owner-b took the lock %v after owner-a's 1 s lease started", held)
	}
	if st := a.unlock(t, resource, "owner-a"); st != unlockBelongsToOthers {
		t.Errorf("expired owner's unlock = %d, want %d LOCK_BELONGS_TO_OTHERS", st, unlockBelongsToOthers)
	}
	if st := lockers[1].unlock(t, resource, "owner-b"); st != unlockSuccess {
		t.Errorf("owner-b's unlock = %d, want %d SUCCESS", st, unlockSuccess)
	}
	if st := b.unlock(t, resource, "owner-b"); st != unlockDoesNotExist {
		t.Errorf("second unlock = %d, want %d LOCK_DOES_NOT_EXIST", st, unlockDoesNotExist)
	}
}

func testLockErrors(t *testing.T, sc *sidecar) {
	for _, tc := range []struct {
		name, path string
		body       map[string]any
		status     int
		code       string
	}{
		{"zero expiry", "lock/" + lockStore, map[string]any{"resourceId": "r", "lockOwner": "o", "expiryInSeconds": 0}, 400, "ERR_MALFORMED_REQUEST"},
		{"negative expiry", "lock/" + lockStore, map[string]any{"resourceId": "r", "lockOwner": "o", "expiryInSeconds": -1}, 400, "ERR_MALFORMED_REQUEST"},
		{"empty resource", "lock/" + lockStore, map[string]any{"lockOwner": "o", "expiryInSeconds": 5}, 400, "ERR_MALFORMED_REQUEST"},
		{"empty owner", "lock/" + lockStore, map[string]any{"resourceId": "r", "expiryInSeconds": 5}, 400, "ERR_MALFORMED_REQUEST"},
		{"unknown store", "lock/nosuchstore", map[string]any{"resourceId": "r", "lockOwner": "o", "expiryInSeconds": 5}, 400, "ERR_LOCK_STORE_NOT_FOUND"},
		{"unlock empty owner", "unlock/" + lockStore, map[string]any{"resourceId": "r"}, 400, "ERR_MALFORMED_REQUEST"},
		{"unlock unknown store", "unlock/nosuchstore", map[string]any{"resourceId": "r", "lockOwner": "o"}, 400, "ERR_LOCK_STORE_NOT_FOUND"},
	} {
		wantError(t, tc.name, do(t, http.MethodPost, sc.URL("/v1.0-alpha1/"+tc.path), tc.body), tc.status, tc.code)
	}
}
