package lock

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
	"github.com/outrigger/outrigger/proxy/errs"
)

// Stores is what the block needs from the plugin host: the lock stores
// configured for this sidecar, by component name.
type Stores interface {
	Lookup(name string) (Store, bool)
	Names() []string
}

// Store is one provisioned lock store component.
type Store struct {
	Name string
	// Conn reaches the plugin; it carries x-component-instance and fails fast
	// with codes.Unavailable while the plugin is down.
	Conn grpc.ClientConnInterface
	// KeyPrefix is the component's keyPrefix metadata: "" or "appid"
	// (default), "name", "none", or a literal prefix.
	KeyPrefix string
}

// Config configures the block.
type Config struct {
	AppID  string
	Stores Stores
	Logger *slog.Logger
}

// API serves the lock API over HTTP (RegisterHTTP) and gRPC (TryLockAlpha1,
// UnlockAlpha1, matching runtimev1.DaprServer).
type API struct {
	appID  string
	stores Stores
	log    *slog.Logger
}

// New returns the lock building block.
func New(cfg Config) *API {
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &API{appID: cfg.AppID, stores: cfg.Stores, log: l.With("block", "lock")}
}

// lockRequest is what TryLock and Unlock requests share.
type lockRequest interface {
	GetStoreName() string
	GetResourceId() string
	GetLockOwner() string
}

// resolve validates a request in Dapr's order and finds its store.
func (a *API) resolve(req lockRequest) (Store, error) {
	if a.stores == nil || len(a.stores.Names()) == 0 {
		return Store{}, errs.LockStoreNotConfigured.New()
	}
	if req.GetResourceId() == "" {
		return Store{}, errs.LockResourceIDEmpty.New(req.GetStoreName())
	}
	if req.GetLockOwner() == "" {
		return Store{}, errs.LockOwnerEmpty.New(req.GetStoreName())
	}
	s, ok := a.stores.Lookup(req.GetStoreName())
	if !ok || s.Conn == nil {
		return Store{}, errs.LockStoreNotFound.New(req.GetStoreName())
	}
	if s.Name == "" {
		s.Name = req.GetStoreName()
	}
	return s, nil
}

// pluginMessage is the message of a plugin error (for Unavailable, the
// host's message naming the plugin).
func pluginMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// TryLockAlpha1 takes a lease.
func (a *API) TryLockAlpha1(ctx context.Context, in *runtimev1.TryLockRequest) (*runtimev1.TryLockResponse, error) {
	resp, err := a.tryLock(ctx, in)
	if err != nil {
		a.log.Debug("trylock failed", "store", in.GetStoreName(), "err", err)
		return nil, errs.GRPC(err)
	}
	return resp, nil
}

func (a *API) tryLock(ctx context.Context, in *runtimev1.TryLockRequest) (*runtimev1.TryLockResponse, error) {
	if in.GetExpiryInSeconds() <= 0 {
		return nil, errs.LockExpiryNotPositive.New(in.GetStoreName())
	}
	s, err := a.resolve(in)
	if err != nil {
		return nil, err
	}
	key, err := lockKey(in.GetResourceId(), s.KeyPrefix, s.Name, a.appID)
	if err != nil {
		return nil, errs.TryLock.New(err.Error())
	}
	out, err := ocomponentsv1.NewLockStoreClient(s.Conn).TryLock(ctx, &ocomponentsv1.LockStoreTryLockRequest{
		ResourceId: key, LockOwner: in.GetLockOwner(), ExpiryInSeconds: in.GetExpiryInSeconds(),
	})
	if err != nil {
		return nil, errs.TryLock.New(pluginMessage(err))
	}
	return &runtimev1.TryLockResponse{Success: out.GetSuccess()}, nil
}

// UnlockAlpha1 releases a lease.
func (a *API) UnlockAlpha1(ctx context.Context, in *runtimev1.UnlockRequest) (*runtimev1.UnlockResponse, error) {
	resp, err := a.unlock(ctx, in)
	if err != nil {
		a.log.Debug("unlock failed", "store", in.GetStoreName(), "err", err)
		return nil, errs.GRPC(err)
	}
	return resp, nil
}

func (a *API) unlock(ctx context.Context, in *runtimev1.UnlockRequest) (*runtimev1.UnlockResponse, error) {
	s, err := a.resolve(in)
	if err != nil {
		return nil, err
	}
	key, err := lockKey(in.GetResourceId(), s.KeyPrefix, s.Name, a.appID)
	if err != nil {
		return nil, errs.Unlock.New(err.Error())
	}
	out, err := ocomponentsv1.NewLockStoreClient(s.Conn).Unlock(ctx, &ocomponentsv1.LockStoreUnlockRequest{
		ResourceId: key, LockOwner: in.GetLockOwner(),
	})
	if err != nil {
		return nil, errs.Unlock.New(pluginMessage(err))
	}
	st, ok := unlockStatus(out.GetStatus())
	if !ok {
		return nil, errs.Unlock.New("lock store " + s.Name + " returned no unlock status")
	}
	return &runtimev1.UnlockResponse{Status: st}, nil
}

func unlockStatus(s ocomponentsv1.UnlockStatus) (runtimev1.UnlockResponse_Status, bool) {
	switch s {
	case ocomponentsv1.UnlockStatus_UNLOCK_STATUS_SUCCESS:
		return runtimev1.UnlockResponse_SUCCESS, true
	case ocomponentsv1.UnlockStatus_UNLOCK_STATUS_LOCK_DOES_NOT_EXIST:
		return runtimev1.UnlockResponse_LOCK_DOES_NOT_EXIST, true
	case ocomponentsv1.UnlockStatus_UNLOCK_STATUS_LOCK_BELONGS_TO_OTHERS:
		return runtimev1.UnlockResponse_LOCK_BELONGS_TO_OTHERS, true
	case ocomponentsv1.UnlockStatus_UNLOCK_STATUS_INTERNAL_ERROR:
		return runtimev1.UnlockResponse_INTERNAL_ERROR, true
	default:
		return 0, false
	}
}

// RegisterHTTP adds the lock routes (Dapr 1.14, alpha only) to mux.
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1.0-alpha1/lock/{storeName}", a.httpTryLock)
	mux.HandleFunc("POST /v1.0-alpha1/unlock/{storeName}", a.httpUnlock)
}

var (
	decodeJSON = protojson.UnmarshalOptions{DiscardUnknown: true, AllowPartial: true}
	// Dapr emits unpopulated fields ({"success":false}) and the unlock
	// status as a number ({"status":0}).
	encodeJSON = protojson.MarshalOptions{EmitUnpopulated: true, UseEnumNumbers: true}
)

// readInto decodes an HTTP body as Dapr's universal handlers do: an empty
// body is an empty request.
func readInto(r *http.Request, in proto.Message) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return errs.BodyTooLarge.New(mbe.Limit)
		}
		return errs.BodyRead.New(err.Error())
	}
	if len(b) == 0 {
		return nil
	}
	if err := decodeJSON.Unmarshal(b, in); err != nil {
		return errs.MalformedRequest.New(err.Error())
	}
	return nil
}

func (a *API) writeProto(w http.ResponseWriter, r *http.Request, m proto.Message, err error) {
	if err != nil {
		a.log.Debug("lock request failed", "path", r.URL.Path, "err", err)
		errs.WriteHTTP(w, err)
		return
	}
	b, err := encodeJSON.Marshal(m)
	if err != nil {
		errs.WriteHTTP(w, errs.Internal.New("encoding the response: "+err.Error()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// POST /v1.0-alpha1/lock/{storeName}
func (a *API) httpTryLock(w http.ResponseWriter, r *http.Request) {
	in := &runtimev1.TryLockRequest{}
	if err := readInto(r, in); err != nil {
		a.writeProto(w, r, nil, err)
		return
	}
	in.StoreName = r.PathValue("storeName")
	resp, err := a.tryLock(r.Context(), in)
	a.writeProto(w, r, resp, err)
}

// POST /v1.0-alpha1/unlock/{storeName}
func (a *API) httpUnlock(w http.ResponseWriter, r *http.Request) {
	in := &runtimev1.UnlockRequest{}
	if err := readInto(r, in); err != nil {
		a.writeProto(w, r, nil, err)
		return
	}
	in.StoreName = r.PathValue("storeName")
	resp, err := a.unlock(r.Context(), in)
	a.writeProto(w, r, resp, err)
}
