package sdk

import (
	"context"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// merger implements merging: batched TryLocks (Unlocks) of one instance
// run as one BulkTryLock (BulkUnlock) when the store has the capability and
// every request is well formed (a malformed one runs alone and gets the
// handler's InvalidArgument).
func (s *lockServer) merger(method string) merger {
	switch method {
	case ocomponentsv1.LockStore_TryLock_FullMethodName:
		return s.mergeTryLocks
	case ocomponentsv1.LockStore_Unlock_FullMethodName:
		return s.mergeUnlocks
	}
	return nil
}

func (s *lockServer) mergeTryLocks(ctx context.Context, raws [][]byte) ([]*ocomponentsv1.UnaryResult, bool) {
	bl, ok := bulkOf[BulkLocker](s.instances.get(ctx))
	if !ok {
		return nil, false
	}
	return mergeAll(raws,
		decodeAs(func(r *ocomponentsv1.LockStoreTryLockRequest) (*TryLockRequest, bool) {
			return &TryLockRequest{ResourceID: r.GetResourceId(), LockOwner: r.GetLockOwner(), ExpiryInSeconds: r.GetExpiryInSeconds()},
				r.GetResourceId() != "" && r.GetLockOwner() != "" && r.GetExpiryInSeconds() > 0
		}),
		func(reqs []*TryLockRequest) ([]TryLockResult, error) { return bl.BulkTryLock(ctx, reqs) },
		func(_ *TryLockRequest, r TryLockResult) (*ocomponentsv1.UnaryResult, bool) {
			if r.Err != nil {
				return errResult(r.Err), true
			}
			return succeeded(&ocomponentsv1.LockStoreTryLockResponse{Success: r.Success}), true
		})
}

func (s *lockServer) mergeUnlocks(ctx context.Context, raws [][]byte) ([]*ocomponentsv1.UnaryResult, bool) {
	bu, ok := bulkOf[BulkUnlocker](s.instances.get(ctx))
	if !ok {
		return nil, false
	}
	return mergeAll(raws,
		decodeAs(func(r *ocomponentsv1.LockStoreUnlockRequest) (*UnlockRequest, bool) {
			return &UnlockRequest{ResourceID: r.GetResourceId(), LockOwner: r.GetLockOwner()},
				r.GetResourceId() != "" && r.GetLockOwner() != ""
		}),
		func(reqs []*UnlockRequest) ([]UnlockResult, error) { return bu.BulkUnlock(ctx, reqs) },
		func(_ *UnlockRequest, r UnlockResult) (*ocomponentsv1.UnaryResult, bool) {
			if r.Err != nil {
				return errResult(r.Err), true
			}
			return succeeded(&ocomponentsv1.LockStoreUnlockResponse{Status: unlockStatusToWire(r.Status)}), true
		})
}
