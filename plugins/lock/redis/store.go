package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/internal/redisconf"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// unlockScript deletes KEYS[1] only when it holds owner ARGV[1].
// Returns 0 released, 1 no such lock, 2 held by another owner.
var unlockScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if not v then return 1 end
if v ~= ARGV[1] then return 2 end
redis.call("DEL", KEYS[1])
return 0
`)

// Store is the lock.redis lock store.
type Store struct {
	log    *slog.Logger
	client *redis.Client
}

// New returns an uninitialised store.
func New(log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{log: log}
}

// Init connects and checks Redis answers.
func (s *Store) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parse(md)
	if err != nil {
		return err
	}
	c, err := redisconf.Dial(ctx, &cfg.opts)
	if err != nil {
		return err
	}
	s.client = c
	return nil
}

// TryLock is SET key owner NX PX expiry.
func (s *Store) TryLock(ctx context.Context, req *sdk.TryLockRequest) (bool, error) {
	ok, err := s.client.SetNX(ctx, req.ResourceID, req.LockOwner, time.Duration(req.ExpiryInSeconds)*time.Second).Result()
	if err != nil {
		return false, fmt.Errorf("locking %q: %w", req.ResourceID, err)
	}
	return ok, nil
}

// Unlock runs the owner-checked release script.
func (s *Store) Unlock(ctx context.Context, req *sdk.UnlockRequest) (sdk.UnlockStatus, error) {
	n, err := unlockScript.Run(ctx, s.client, []string{req.ResourceID}, req.LockOwner).Int()
	if err != nil {
		return 0, fmt.Errorf("unlocking %q: %w", req.ResourceID, err)
	}
	switch n {
	case 0:
		return sdk.UnlockSuccess, nil
	case 1:
		return sdk.LockDoesNotExist, nil
	case 2:
		return sdk.LockBelongsToOthers, nil
	default:
		return 0, fmt.Errorf("unlocking %q: unexpected script result %d", req.ResourceID, n)
	}
}

// Ping checks Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.client == nil {
		return errors.New("not initialised")
	}
	return s.client.Ping(ctx).Err()
}

// Close closes the client.
func (s *Store) Close() error {
	if s.client == nil {
		return nil
	}
	return s.client.Close()
}
