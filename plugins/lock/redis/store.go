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
	return unlockStatus(req.ResourceID, unlockScript.Run(ctx, s.client, []string{req.ResourceID}, req.LockOwner))
}

// unlockStatus reads the release script's answer.
func unlockStatus(resource string, cmd *redis.Cmd) (sdk.UnlockStatus, error) {
	n, err := cmd.Int()
	if err != nil {
		return 0, fmt.Errorf("unlocking %q: %w", resource, err)
	}
	switch n {
	case 0:
		return sdk.UnlockSuccess, nil
	case 1:
		return sdk.LockDoesNotExist, nil
	case 2:
		return sdk.LockBelongsToOthers, nil
	default:
		return 0, fmt.Errorf("unlocking %q: unexpected script result %d", resource, n)
	}
}

// BulkTryLock takes several leases in one pipeline (SET NX PX each, run
// in order by Redis).
func (s *Store) BulkTryLock(ctx context.Context, reqs []*sdk.TryLockRequest) ([]sdk.TryLockResult, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*redis.BoolCmd, len(reqs))
	for i, r := range reqs {
		cmds[i] = pipe.SetNX(ctx, r.ResourceID, r.LockOwner, time.Duration(r.ExpiryInSeconds)*time.Second)
	}
	if _, err := pipe.Exec(ctx); err != nil && !redisconf.IsReplyError(err) {
		return nil, fmt.Errorf("locking %d resources: %w", len(reqs), err)
	}
	out := make([]sdk.TryLockResult, len(reqs))
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			out[i].Err = fmt.Errorf("locking %q: %w", reqs[i].ResourceID, err)
			continue
		}
		out[i].Success = c.Val()
	}
	return out, nil
}

// BulkUnlock runs the release script for several leases in one pipeline.
func (s *Store) BulkUnlock(ctx context.Context, reqs []*sdk.UnlockRequest) ([]sdk.UnlockResult, error) {
	run := func() ([]*redis.Cmd, error) {
		pipe := s.client.Pipeline()
		cmds := make([]*redis.Cmd, len(reqs))
		for i, r := range reqs {
			cmds[i] = unlockScript.EvalSha(ctx, pipe, []string{r.ResourceID}, r.LockOwner)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// First use on this server (or after SCRIPT FLUSH): load, then again.
		if lerr := unlockScript.Load(ctx, s.client).Err(); lerr != nil {
			return nil, fmt.Errorf("loading the unlock script: %w", lerr)
		}
		cmds, err = run()
	}
	if err != nil && !redisconf.IsReplyError(err) {
		return nil, fmt.Errorf("unlocking %d resources: %w", len(reqs), err)
	}
	out := make([]sdk.UnlockResult, len(reqs))
	for i, c := range cmds {
		out[i].Status, out[i].Err = unlockStatus(reqs[i].ResourceID, c)
	}
	return out, nil
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
