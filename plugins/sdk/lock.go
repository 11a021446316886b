package sdk

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
)

// LockStore is what every distributed-lock plugin implements
// (EXPERIMENTAL: served on Outrigger's own outrigger.components.v1 LockStore
// service; Dapr has no pluggable lock protocol). Optional: Closer, Pinger.
type LockStore interface {
	// Init configures the store from its component metadata. It is called
	// once per component instance, before any other call.
	Init(ctx context.Context, md Metadata) error
	// TryLock takes a lease on req.ResourceID for req.LockOwner lasting
	// req.ExpiryInSeconds (always > 0), unless an unexpired lease exists
	// (held by anyone, the same owner included): then it returns false. It
	// never waits for the lock.
	TryLock(ctx context.Context, req *TryLockRequest) (bool, error)
	// Unlock releases the lease when req.LockOwner holds it. An expired
	// lease counts as missing.
	Unlock(ctx context.Context, req *UnlockRequest) (UnlockStatus, error)
}

// TryLockRequest asks for a lease.
type TryLockRequest struct {
	ResourceID      string
	LockOwner       string
	ExpiryInSeconds int32
}

// UnlockRequest releases a lease.
type UnlockRequest struct {
	ResourceID string
	LockOwner  string
}

// UnlockStatus is the outcome of an Unlock. A failure to reach the backend
// is an error from Unlock, not a status.
type UnlockStatus int

const (
	// UnlockSuccess: the owner's lease was released.
	UnlockSuccess UnlockStatus = iota
	// LockDoesNotExist: no unexpired lease on the resource.
	LockDoesNotExist
	// LockBelongsToOthers: another owner holds the lease.
	LockBelongsToOthers
	// UnlockInternalError: the store failed in a way it reports as a status.
	UnlockInternalError
)

func (s UnlockStatus) String() string {
	switch s {
	case UnlockSuccess:
		return "SUCCESS"
	case LockDoesNotExist:
		return "LOCK_DOES_NOT_EXIST"
	case LockBelongsToOthers:
		return "LOCK_BELONGS_TO_OTHERS"
	case UnlockInternalError:
		return "INTERNAL_ERROR"
	default:
		return "UnlockStatus(?)"
	}
}

// WithLockStore serves a lock store on the outrigger.components.v1.LockStore
// service; newStore is called once per component instance (at Init) and once
// more to check the factory.
func WithLockStore(newStore func() LockStore) Option {
	return addService("lock", func(s grpc.ServiceRegistrar, log *slog.Logger) (func() error, error) {
		srv, err := newLockServer(newStore, log)
		if err != nil {
			return nil, err
		}
		srv.register(s)
		return srv.instances.closeAll, nil
	})
}

// BulkLocker takes several leases in one backend round trip. Optional: the
// SDK uses it when the host batches TryLock calls under load, and runs
// TryLock call by call without it. results[i] answers reqs[i], as TryLock
// would; the requests may name one resource more than once (the first
// wins, as if run in order).
type BulkLocker interface {
	BulkTryLock(ctx context.Context, reqs []*TryLockRequest) ([]TryLockResult, error)
}

// BulkUnlocker releases several leases in one backend round trip, as
// BulkLocker does for TryLock.
type BulkUnlocker interface {
	BulkUnlock(ctx context.Context, reqs []*UnlockRequest) ([]UnlockResult, error)
}

// TryLockResult is one answer of a BulkTryLock: what TryLock would have
// returned.
type TryLockResult struct {
	Success bool
	Err     error
}

// UnlockResult is one answer of a BulkUnlock: what Unlock would have
// returned.
type UnlockResult struct {
	Status UnlockStatus
	Err    error
}
