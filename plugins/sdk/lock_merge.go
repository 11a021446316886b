package sdk

import (
	"context"

	"google.golang.org/protobuf/proto"

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
	st, err := s.instances.get(ctx)
	if err != nil {
		return nil, false
	}
	bl, ok := st.(BulkLocker)
	if !ok {
		return nil, false
	}
	reqs := make([]*TryLockRequest, len(raws))
	for i, raw := range raws {
		var r ocomponentsv1.LockStoreTryLockRequest
		if proto.Unmarshal(raw, &r) != nil || r.GetResourceId() == "" || r.GetLockOwner() == "" || r.GetExpiryInSeconds() <= 0 {
			return nil, false
		}
		reqs[i] = &TryLockRequest{ResourceID: r.GetResourceId(), LockOwner: r.GetLockOwner(), ExpiryInSeconds: r.GetExpiryInSeconds()}
	}
	res, err := bl.BulkTryLock(ctx, reqs)
	if err != nil || len(res) != len(reqs) {
		return nil, false
	}
	out := make([]*ocomponentsv1.UnaryResult, len(res))
	for i, r := range res {
		if r.Err != nil {
			out[i] = errResult(r.Err)
			continue
		}
		out[i] = succeeded(&ocomponentsv1.LockStoreTryLockResponse{Success: r.Success})
	}
	return out, true
}

func (s *lockServer) mergeUnlocks(ctx context.Context, raws [][]byte) ([]*ocomponentsv1.UnaryResult, bool) {
	st, err := s.instances.get(ctx)
	if err != nil {
		return nil, false
	}
	bu, ok := st.(BulkUnlocker)
	if !ok {
		return nil, false
	}
	reqs := make([]*UnlockRequest, len(raws))
	for i, raw := range raws {
		var r ocomponentsv1.LockStoreUnlockRequest
		if proto.Unmarshal(raw, &r) != nil || r.GetResourceId() == "" || r.GetLockOwner() == "" {
			return nil, false
		}
		reqs[i] = &UnlockRequest{ResourceID: r.GetResourceId(), LockOwner: r.GetLockOwner()}
	}
	res, err := bu.BulkUnlock(ctx, reqs)
	if err != nil || len(res) != len(reqs) {
		return nil, false
	}
	out := make([]*ocomponentsv1.UnaryResult, len(res))
	for i, r := range res {
		if r.Err != nil {
			out[i] = errResult(r.Err)
			continue
		}
		out[i] = succeeded(&ocomponentsv1.LockStoreUnlockResponse{Status: unlockStatusToWire(r.Status)})
	}
	return out, true
}
