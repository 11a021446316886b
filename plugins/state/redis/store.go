package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/internal/redisconf"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// ttlExpireTimeKey is the response metadata key Dapr's stores use to report
// when a key expires (RFC 3339, UTC).
const ttlExpireTimeKey = "ttlExpireTime"

// Store is the state.redis component: one key is one Redis hash holding the
// value ("data") and a counter ("version") that is the etag.
type Store struct {
	log    *slog.Logger
	cfg    config
	client redis.UniversalClient
	write  *redis.Script
}

// New returns an uninitialised store logging to log; the SDK calls it once
// per component instance and then Init.
func New(log *slog.Logger) *Store {
	return &Store{log: log}
}

// Init parses the metadata, connects and checks the server answers.
func (s *Store) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parse(md)
	if err != nil {
		return fmt.Errorf("state.redis: %w", err)
	}
	s.cfg = cfg
	s.write = newWriteScript()
	s.client = redis.NewUniversalClient(cfg.UniversalOptions())
	if err := s.client.Ping(ctx).Err(); err != nil {
		_ = s.client.Close()
		s.client = nil
		return fmt.Errorf("state.redis: connect to %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	// Best effort: pipelined writes use EVALSHA and fall back when it fails.
	if err := s.write.Load(ctx, s.client).Err(); err != nil {
		s.log.Warn("loading the write script failed; it will be sent on first use", "error", err)
	}
	return nil
}

// Get reads one key.
func (s *Store) Get(ctx context.Context, req *sdk.GetRequest) (*sdk.GetResponse, error) {
	if req.Key == "" {
		return nil, errors.New("state.redis: key is empty")
	}
	pipe := s.client.Pipeline()
	vals := pipe.HMGet(ctx, req.Key, "data", "version")
	pttl := pipe.PTTL(ctx, req.Key)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("state.redis: get %q: %w", req.Key, err)
	}
	item, err := toItem(req.Key, vals, pttl)
	if err != nil {
		return nil, err
	}
	return &sdk.GetResponse{Found: item.Found, Data: item.Data, ETag: item.ETag, Metadata: item.Metadata}, nil
}

// BulkGet reads many keys in one round trip.
func (s *Store) BulkGet(ctx context.Context, reqs []*sdk.GetRequest) ([]sdk.BulkItem, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	pipe := s.client.Pipeline()
	vals := make([]*redis.SliceCmd, len(reqs))
	ttls := make([]*redis.DurationCmd, len(reqs))
	for i, r := range reqs {
		vals[i] = pipe.HMGet(ctx, r.Key, "data", "version")
		ttls[i] = pipe.PTTL(ctx, r.Key)
	}
	// Per-key errors (e.g. WRONGTYPE) are reported per item below.
	if _, err := pipe.Exec(ctx); err != nil && !redisconf.IsReplyError(err) {
		return nil, fmt.Errorf("state.redis: bulk get: %w", err)
	}
	out := make([]sdk.BulkItem, len(reqs))
	for i, r := range reqs {
		item, err := toItem(r.Key, vals[i], ttls[i])
		if err != nil {
			item = sdk.BulkItem{Key: r.Key, Error: err.Error()}
		}
		out[i] = item
	}
	return out, nil
}

// toItem turns the replies of HMGET data version + PTTL into a result.
func toItem(key string, vals *redis.SliceCmd, pttl *redis.DurationCmd) (sdk.BulkItem, error) {
	if err := vals.Err(); err != nil {
		return sdk.BulkItem{}, fmt.Errorf("state.redis: get %q: %w", key, err)
	}
	v := vals.Val()
	if len(v) != 2 || v[0] == nil {
		return sdk.BulkItem{Key: key}, nil
	}
	data, _ := v[0].(string)
	item := sdk.BulkItem{Key: key, Found: true, Data: []byte(data)}
	if ver, ok := v[1].(string); ok {
		item.ETag = ver
	}
	if d := pttl.Val(); pttl.Err() == nil && d > 0 {
		item.Metadata = map[string]string{
			ttlExpireTimeKey: time.Now().Add(d).UTC().Format(time.RFC3339),
		}
	}
	return item, nil
}

// Set writes one key, checking the etag or first-write on the server.
func (s *Store) Set(ctx context.Context, req *sdk.SetRequest) error {
	return s.apply(ctx, []sdk.TxOp{{Set: req}})
}

// Delete removes one key, checking the etag on the server.
func (s *Store) Delete(ctx context.Context, req *sdk.DeleteRequest) error {
	return s.apply(ctx, []sdk.TxOp{{Delete: req}})
}

// Transact applies all operations atomically: one script run checks every
// etag first and writes only if all match. In cluster mode all keys must
// hash to one slot (use {hash tags}).
func (s *Store) Transact(ctx context.Context, ops []sdk.TxOp, _ map[string]string) error {
	if len(ops) == 0 {
		return nil
	}
	return s.apply(ctx, ops)
}

// BulkSet writes many keys in one round trip; each write is checked on its
// own (not atomic as a whole, as in Dapr). Failures are joined.
func (s *Store) BulkSet(ctx context.Context, reqs []*sdk.SetRequest) error {
	ops := make([]sdk.TxOp, len(reqs))
	for i, r := range reqs {
		ops[i] = sdk.TxOp{Set: r}
	}
	return s.pipelined(ctx, ops)
}

// BulkDelete removes many keys in one round trip, each checked on its own.
func (s *Store) BulkDelete(ctx context.Context, reqs []*sdk.DeleteRequest) error {
	ops := make([]sdk.TxOp, len(reqs))
	for i, r := range reqs {
		ops[i] = sdk.TxOp{Delete: r}
	}
	return s.pipelined(ctx, ops)
}

// apply runs the write script once over ops.
func (s *Store) apply(ctx context.Context, ops []sdk.TxOp) error {
	keys, args, err := s.scriptArgs(ops)
	if err != nil {
		return err
	}
	return scriptErr(keys, s.write.Run(ctx, s.client, keys, args...).Err())
}

// pipelined runs the write script once per operation in one pipeline.
func (s *Store) pipelined(ctx context.Context, ops []sdk.TxOp) error {
	if len(ops) == 0 {
		return nil
	}
	type call struct {
		keys []string
		args []any
		cmd  *redis.Cmd
	}
	calls := make([]call, 0, len(ops))
	var errs []error
	pipe := s.client.Pipeline()
	for _, op := range ops {
		keys, args, err := s.scriptArgs([]sdk.TxOp{op})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		calls = append(calls, call{keys: keys, args: args, cmd: s.write.EvalSha(ctx, pipe, keys, args...)})
	}
	if len(calls) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !redisconf.IsReplyError(err) {
			return fmt.Errorf("state.redis: bulk write: %w", err)
		}
	}
	for _, c := range calls {
		err := c.cmd.Err()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// The script cache was flushed: Run loads it again.
			err = s.write.Run(ctx, s.client, c.keys, c.args...).Err()
		}
		if err = scriptErr(c.keys, err); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// scriptArgs encodes operations for writeSrc, validating them first so a
// bad operation fails before anything is sent.
func (s *Store) scriptArgs(ops []sdk.TxOp) ([]string, []any, error) {
	keys := make([]string, 0, len(ops))
	args := make([]any, 0, 5*len(ops))
	for i, op := range ops {
		switch {
		case op.Set != nil && op.Delete == nil:
			r := op.Set
			if r.Key == "" {
				return nil, nil, errors.New("state.redis: set: key is empty")
			}
			etag, err := checkETag(r.ETag)
			if err != nil {
				return nil, nil, fmt.Errorf("state.redis: set %q: %w", r.Key, err)
			}
			ttl, err := s.ttl(r.Metadata)
			if err != nil {
				return nil, nil, fmt.Errorf("state.redis: set %q: %w", r.Key, err)
			}
			first := "0"
			if r.Concurrency == sdk.FirstWrite {
				first = "1"
			}
			keys = append(keys, r.Key)
			args = append(args, "s", etag, first, r.Value, ttl.Milliseconds())
		case op.Delete != nil && op.Set == nil:
			r := op.Delete
			if r.Key == "" {
				return nil, nil, errors.New("state.redis: delete: key is empty")
			}
			etag, err := checkETag(r.ETag)
			if err != nil {
				return nil, nil, fmt.Errorf("state.redis: delete %q: %w", r.Key, err)
			}
			keys = append(keys, r.Key)
			args = append(args, "d", etag, "0", "", 0)
		default:
			return nil, nil, fmt.Errorf("state.redis: operation %d: want exactly one of set and delete", i)
		}
	}
	return keys, args, nil
}

// ttl is the request's ttlInSeconds, else the component default; -1 in the
// request means no expiry even when the component has a default.
func (s *Store) ttl(md map[string]string) (time.Duration, error) {
	if v, ok := md[sdk.TTLMetadataKey]; ok && v != "" {
		d, _, err := sdk.ParseTTL(md)
		return d, err
	}
	return s.cfg.defaultTTL, nil
}

// checkETag returns the etag to send, "" for none. Versions are positive
// integers, anything else can never match and is rejected as invalid.
func checkETag(etag *string) (string, error) {
	if etag == nil || *etag == "" {
		return "", nil
	}
	if n, err := strconv.ParseUint(*etag, 10, 63); err != nil || n == 0 {
		return "", fmt.Errorf("etag %q: %w", *etag, sdk.ErrETagInvalid)
	}
	return *etag, nil
}

// scriptErr maps a failed etag check to sdk.ErrETagMismatch.
func scriptErr(keys []string, err error) error {
	switch {
	case err == nil:
		return nil
	case redis.HasErrorPrefix(err, mismatchPrefix):
		key := strings.TrimSpace(strings.TrimPrefix(err.Error(), mismatchPrefix))
		return fmt.Errorf("state.redis: key %q: %w", key, sdk.ErrETagMismatch)
	default:
		return fmt.Errorf("state.redis: write %q: %w", keys, err)
	}
}

// Ping checks the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.client == nil {
		return errors.New("state.redis: not initialised")
	}
	return s.client.Ping(ctx).Err()
}

// Close releases the connections.
func (s *Store) Close() error {
	if s.client == nil {
		return nil
	}
	return s.client.Close()
}

// ETags marks the store as enforcing etags (feature ETAG).
func (s *Store) ETags() {}

// TTL marks the store as honouring ttlInSeconds (feature TTL).
func (s *Store) TTL() {}

var (
	_ sdk.StateStore    = (*Store)(nil)
	_ sdk.ETagger       = (*Store)(nil)
	_ sdk.TTLer         = (*Store)(nil)
	_ sdk.Transactioner = (*Store)(nil)
	_ sdk.BulkGetter    = (*Store)(nil)
	_ sdk.BulkSetter    = (*Store)(nil)
	_ sdk.BulkDeleter   = (*Store)(nil)
	_ sdk.Pinger        = (*Store)(nil)
	_ sdk.Closer        = (*Store)(nil)
)
