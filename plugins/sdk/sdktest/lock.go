package sdktest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/outrigger/outrigger/plugins/sdk"
	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// lockClient is one lock store instance served over its own gRPC pair.
type lockClient struct {
	name     string
	instance string
	conn     *grpc.ClientConn
	c        ocomponentsv1.LockStoreClient
}

func newLockClient(t *testing.T, name string, newStore func() sdk.LockStore) lockClient {
	conn := serveOption(t, sdk.WithLockStore(newStore))
	return lockClient{name: name, instance: "conformance-" + randomID(), conn: conn, c: ocomponentsv1.NewLockStoreClient(conn)}
}

func (l lockClient) tryLock(t *testing.T, resource, owner string, expiry int32) bool {
	t.Helper()
	ctx, cancel := instanceCtx(l.instance, callTimeout)
	defer cancel()
	resp, err := l.c.TryLock(ctx, &ocomponentsv1.LockStoreTryLockRequest{ResourceId: resource, LockOwner: owner, ExpiryInSeconds: expiry})
	if err != nil {
		t.Fatalf("%s: TryLock(%s, %s): %v", l.name, resource, owner, err)
	}
	return resp.GetSuccess()
}

func (l lockClient) unlock(t *testing.T, resource, owner string) ocomponentsv1.UnlockStatus {
	t.Helper()
	ctx, cancel := instanceCtx(l.instance, callTimeout)
	defer cancel()
	resp, err := l.c.Unlock(ctx, &ocomponentsv1.LockStoreUnlockRequest{ResourceId: resource, LockOwner: owner})
	if err != nil {
		t.Fatalf("%s: Unlock(%s, %s): %v", l.name, resource, owner, err)
	}
	return resp.GetStatus()
}

// ExerciseLock checks a lock store against the plugin contract with two
// clients on one backend (newA and newB are separate store values — in the
// plugin's tests, separate connections or files opened twice — each served
// over its own gRPC pair, as two sidecars would be): exactly one of many
// concurrent contenders wins a resource; a held lease is not granted again,
// not even to its owner; unlock by a non-owner reports
// LOCK_BELONGS_TO_OTHERS, unlock of a missing lock LOCK_DOES_NOT_EXIST, and
// the owner's unlock SUCCESS; an expired lease lets the other client take the
// resource (not before it expires); bad requests are InvalidArgument; calls
// sent together in one UnaryBatch (as the host does under load) answer as
// they would alone, contention within the batch included.
// Resource ids start with a random run id.
func ExerciseLock(t *testing.T, newA, newB func() sdk.LockStore, md sdk.Metadata) {
	t.Helper()
	run := "lock-" + randomID()
	res := func(name string) string { return run + "-" + name }
	a, b := newLockClient(t, "A", newA), newLockClient(t, "B", newB)

	t.Run("uninitialised instance", func(t *testing.T) {
		ctx, cancel := instanceCtx("never-initialised-"+randomID(), callTimeout)
		defer cancel()
		_, err := a.c.TryLock(ctx, &ocomponentsv1.LockStoreTryLockRequest{ResourceId: "r", LockOwner: "o", ExpiryInSeconds: 1})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("TryLock on an uninitialised instance: want FailedPrecondition, got %v", err)
		}
	})

	for _, l := range []lockClient{a, b} {
		ctx, cancel := instanceCtx(l.instance, callTimeout)
		_, err := l.c.Init(ctx, &ocomponentsv1.LockStoreInitRequest{Metadata: &ocomponentsv1.ComponentMetadata{Properties: md}})
		if err == nil {
			_, err = l.c.Features(ctx, &ocomponentsv1.LockStoreFeaturesRequest{})
		}
		if err == nil {
			_, err = l.c.Ping(ctx, &ocomponentsv1.LockStorePingRequest{})
		}
		cancel()
		if err != nil {
			t.Fatalf("%s: Init/Features/Ping: %v", l.name, err)
		}
	}

	t.Run("one winner among contenders", func(t *testing.T) {
		const perClient = 8
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, l := range []lockClient{a, b} {
			for i := range perClient {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ctx, cancel := instanceCtx(l.instance, callTimeout)
					defer cancel()
					resp, err := l.c.TryLock(ctx, &ocomponentsv1.LockStoreTryLockRequest{
						ResourceId: res("contended"), LockOwner: fmt.Sprintf("%s-%d", l.name, i), ExpiryInSeconds: 30})
					if err != nil {
						t.Errorf("%s: TryLock: %v", l.name, err)
						return
					}
					if resp.GetSuccess() {
						wins.Add(1)
					}
				}()
			}
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d of %d contenders got the lock; want exactly 1", n, 2*perClient)
		}
	})

	t.Run("held lease is not granted again", func(t *testing.T) {
		if !a.tryLock(t, res("held"), "owner-a", 30) {
			t.Fatal("first TryLock on a free resource failed")
		}
		if b.tryLock(t, res("held"), "owner-b", 30) {
			t.Fatal("another owner got a held lock")
		}
		if a.tryLock(t, res("held"), "owner-a", 30) {
			t.Fatal("the owner got its own held lock a second time; want false")
		}
		if !a.tryLock(t, res("other-resource"), "owner-b", 30) {
			t.Fatal("a different resource was not free")
		}
	})

	t.Run("unlock statuses", func(t *testing.T) {
		if got := b.unlock(t, res("never-locked"), "owner-a"); got != ocomponentsv1.UnlockStatus_UNLOCK_STATUS_LOCK_DOES_NOT_EXIST {
			t.Errorf("unlock of a missing lock: %v, want LOCK_DOES_NOT_EXIST", got)
		}
		if !a.tryLock(t, res("unlock"), "owner-a", 30) {
			t.Fatal("TryLock on a free resource failed")
		}
		if got := b.unlock(t, res("unlock"), "owner-b"); got != ocomponentsv1.UnlockStatus_UNLOCK_STATUS_LOCK_BELONGS_TO_OTHERS {
			t.Errorf("unlock by a non-owner: %v, want LOCK_BELONGS_TO_OTHERS", got)
		}
		if got := b.unlock(t, res("unlock"), "owner-a"); got != ocomponentsv1.UnlockStatus_UNLOCK_STATUS_SUCCESS {
			t.Errorf("unlock by the owner (through the other client): %v, want SUCCESS", got)
		}
		if got := a.unlock(t, res("unlock"), "owner-a"); got != ocomponentsv1.UnlockStatus_UNLOCK_STATUS_LOCK_DOES_NOT_EXIST {
			t.Errorf("second unlock: %v, want LOCK_DOES_NOT_EXIST", got)
		}
		if !b.tryLock(t, res("unlock"), "owner-b", 30) {
			t.Error("an unlocked resource could not be locked again")
		}
	})

	t.Run("expiry lets another owner in", func(t *testing.T) {
		begin := time.Now()
		if !a.tryLock(t, res("expiring"), "owner-a", 1) {
			t.Fatal("TryLock on a free resource failed")
		}
		deadline := begin.Add(10 * time.Second)
		for !b.tryLock(t, res("expiring"), "owner-b", 30) {
			if time.Now().After(deadline) {
				t.Fatal("a 1 s lease was still held after 10 s")
			}
			time.Sleep(50 * time.Millisecond) // polling a lease; there is no readiness signal
		}
		if held := time.Since(begin); held < 900*time.Millisecond {
			t.Fatalf("another owner got the lock after %s; the 1 s lease was not honoured", held)
		}
		if got := a.unlock(t, res("expiring"), "owner-a"); got != ocomponentsv1.UnlockStatus_UNLOCK_STATUS_LOCK_BELONGS_TO_OTHERS {
			t.Errorf("unlock by the expired owner: %v, want LOCK_BELONGS_TO_OTHERS", got)
		}
	})

	t.Run("batched calls answer as single calls", func(t *testing.T) {
		try := func(resource, owner string) batched {
			return batched{ocomponentsv1.LockStore_TryLock_FullMethodName, &ocomponentsv1.LockStoreTryLockRequest{ResourceId: res(resource), LockOwner: owner, ExpiryInSeconds: 30}}
		}
		unlock := func(resource, owner string) batched {
			return batched{ocomponentsv1.LockStore_Unlock_FullMethodName, &ocomponentsv1.LockStoreUnlockRequest{ResourceId: res(resource), LockOwner: owner}}
		}
		tl := func() proto.Message { return &ocomponentsv1.LockStoreTryLockResponse{} }
		ul := func() proto.Message { return &ocomponentsv1.LockStoreUnlockResponse{} }
		replies := []proto.Message{tl(), tl(), tl()}
		errs := callBatch(t, a.conn, a.instance, []batched{try("batch-1", "o1"), try("batch-1", "o2"), try("batch-2", "o1")}, replies)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("batched TryLock %d: %v", i, err)
			}
		}
		won1 := replies[0].(*ocomponentsv1.LockStoreTryLockResponse).GetSuccess()
		won2 := replies[1].(*ocomponentsv1.LockStoreTryLockResponse).GetSuccess()
		if won1 == won2 {
			t.Fatalf("two owners asking for one resource in one batch: successes %v and %v, want exactly one", won1, won2)
		}
		if !replies[2].(*ocomponentsv1.LockStoreTryLockResponse).GetSuccess() {
			t.Fatal("batched TryLock of a free resource failed")
		}
		// A malformed call fails alone; the well-formed one beside it succeeds.
		replies = []proto.Message{tl(), tl()}
		errs = callBatch(t, a.conn, a.instance, []batched{
			{ocomponentsv1.LockStore_TryLock_FullMethodName, &ocomponentsv1.LockStoreTryLockRequest{ResourceId: res("batch-3"), LockOwner: "o1"}},
			try("batch-4", "o1"),
		}, replies)
		if status.Code(errs[0]) != codes.InvalidArgument {
			t.Fatalf("batched TryLock with no expiry: want InvalidArgument, got %v", errs[0])
		}
		if errs[1] != nil || !replies[1].(*ocomponentsv1.LockStoreTryLockResponse).GetSuccess() {
			t.Fatalf("batched TryLock of a free resource beside a malformed one: %v, success %v", errs[1], replies[1])
		}
		winner, loser := "o1", "o2"
		if won2 {
			winner, loser = loser, winner
		}
		replies = []proto.Message{ul(), ul(), ul()}
		errs = callBatch(t, a.conn, a.instance, []batched{unlock("batch-1", loser), unlock("batch-never", "o1"), unlock("batch-2", "o1")}, replies)
		want := []ocomponentsv1.UnlockStatus{
			ocomponentsv1.UnlockStatus_UNLOCK_STATUS_LOCK_BELONGS_TO_OTHERS,
			ocomponentsv1.UnlockStatus_UNLOCK_STATUS_LOCK_DOES_NOT_EXIST,
			ocomponentsv1.UnlockStatus_UNLOCK_STATUS_SUCCESS,
		}
		for i, w := range want {
			if errs[i] != nil {
				t.Fatalf("batched Unlock %d: %v", i, errs[i])
			}
			if got := replies[i].(*ocomponentsv1.LockStoreUnlockResponse).GetStatus(); got != w {
				t.Errorf("batched Unlock %d: %v, want %v", i, got, w)
			}
		}
		if got := a.unlock(t, res("batch-1"), winner); got != ocomponentsv1.UnlockStatus_UNLOCK_STATUS_SUCCESS {
			t.Errorf("the batch winner's own unlock: %v, want SUCCESS", got)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, req := range []*ocomponentsv1.LockStoreTryLockRequest{
			{ResourceId: "", LockOwner: "o", ExpiryInSeconds: 1},
			{ResourceId: res("bad"), LockOwner: "", ExpiryInSeconds: 1},
			{ResourceId: res("bad"), LockOwner: "o", ExpiryInSeconds: 0},
			{ResourceId: res("bad"), LockOwner: "o", ExpiryInSeconds: -5},
		} {
			ctx, cancel := instanceCtx(a.instance, callTimeout)
			_, err := a.c.TryLock(ctx, req)
			cancel()
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("TryLock(%v): want InvalidArgument, got %v", req, err)
			}
		}
	})
}
