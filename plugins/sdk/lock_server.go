package sdk

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// lockServer implements outrigger.components.v1.LockStore.
type lockServer struct {
	ocomponentsv1.UnimplementedLockStoreServer
	instances *instanceSet[LockStore]
}

func newLockServer(newStore func() LockStore, logger *slog.Logger) (*lockServer, error) {
	set, err := newInstanceSet("lock store", newStore, logger)
	if err != nil {
		return nil, err
	}
	return &lockServer{instances: set}, nil
}

func (s *lockServer) register(r grpc.ServiceRegistrar) { ocomponentsv1.RegisterLockStoreServer(r, s) }

func (s *lockServer) Init(ctx context.Context, req *ocomponentsv1.LockStoreInitRequest) (*ocomponentsv1.LockStoreInitResponse, error) {
	err := s.instances.init(ctx, req.GetMetadata().GetProperties(), func(st LockStore, md Metadata) error {
		return st.Init(ctx, md)
	})
	if err != nil {
		return nil, err
	}
	return &ocomponentsv1.LockStoreInitResponse{}, nil
}

func (s *lockServer) Features(context.Context, *ocomponentsv1.LockStoreFeaturesRequest) (*ocomponentsv1.LockStoreFeaturesResponse, error) {
	return &ocomponentsv1.LockStoreFeaturesResponse{Features: []string{}}, nil
}

func (s *lockServer) Ping(ctx context.Context, _ *ocomponentsv1.LockStorePingRequest) (*ocomponentsv1.LockStorePingResponse, error) {
	if err := s.instances.ping(ctx); err != nil {
		return nil, err
	}
	return &ocomponentsv1.LockStorePingResponse{}, nil
}

func (s *lockServer) TryLock(ctx context.Context, req *ocomponentsv1.LockStoreTryLockRequest) (*ocomponentsv1.LockStoreTryLockResponse, error) {
	st, err := s.instances.get(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case req.GetResourceId() == "":
		return nil, status.Error(codes.InvalidArgument, "resource_id is empty")
	case req.GetLockOwner() == "":
		return nil, status.Error(codes.InvalidArgument, "lock_owner is empty")
	case req.GetExpiryInSeconds() <= 0:
		return nil, status.Errorf(codes.InvalidArgument, "expiry_in_seconds must be positive, got %d", req.GetExpiryInSeconds())
	}
	ok, err := st.TryLock(ctx, &TryLockRequest{ResourceID: req.GetResourceId(), LockOwner: req.GetLockOwner(), ExpiryInSeconds: req.GetExpiryInSeconds()})
	if err != nil {
		return nil, wireError(err)
	}
	return &ocomponentsv1.LockStoreTryLockResponse{Success: ok}, nil
}

func (s *lockServer) Unlock(ctx context.Context, req *ocomponentsv1.LockStoreUnlockRequest) (*ocomponentsv1.LockStoreUnlockResponse, error) {
	st, err := s.instances.get(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetResourceId() == "" || req.GetLockOwner() == "" {
		return nil, status.Error(codes.InvalidArgument, "resource_id and lock_owner must not be empty")
	}
	res, err := st.Unlock(ctx, &UnlockRequest{ResourceID: req.GetResourceId(), LockOwner: req.GetLockOwner()})
	if err != nil {
		return nil, wireError(err)
	}
	return &ocomponentsv1.LockStoreUnlockResponse{Status: unlockStatusToWire(res)}, nil
}

func unlockStatusToWire(s UnlockStatus) ocomponentsv1.UnlockStatus {
	switch s {
	case UnlockSuccess:
		return ocomponentsv1.UnlockStatus_UNLOCK_STATUS_SUCCESS
	case LockDoesNotExist:
		return ocomponentsv1.UnlockStatus_UNLOCK_STATUS_LOCK_DOES_NOT_EXIST
	case LockBelongsToOthers:
		return ocomponentsv1.UnlockStatus_UNLOCK_STATUS_LOCK_BELONGS_TO_OTHERS
	default:
		return ocomponentsv1.UnlockStatus_UNLOCK_STATUS_INTERNAL_ERROR
	}
}
