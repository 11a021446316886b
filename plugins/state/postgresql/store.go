package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// ttlExpireTimeKey is the response metadata key Dapr's stores use to report
// when a key expires (RFC 3339, UTC).
const ttlExpireTimeKey = "ttlExpireTime"

// Store is the state.postgresql component: one row per key in a table laid
// out like Dapr's v2 one (key, value bytea, isbinary, etag uuid, insertdate,
// updatedate, expiredate); the etag changes on every write.
type Store struct {
	log  *slog.Logger
	cfg  config
	pool *pgxpool.Pool
	sql  statements

	stop context.CancelFunc // stops the cleanup loop
	done sync.WaitGroup
}

// New returns an uninitialised store logging to log; the SDK calls it once
// per component instance and then Init.
func New(log *slog.Logger) *Store {
	return &Store{log: log}
}

// Init parses the metadata, connects, creates the tables if needed and
// starts the periodic cleanup of expired rows.
func (s *Store) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parse(md)
	if err != nil {
		return fmt.Errorf("state.postgresql: %w", err)
	}
	s.cfg = cfg
	s.sql = newStatements(cfg.table, cfg.metadataTable)
	pc, err := pgxpool.ParseConfig(cfg.connString)
	if err != nil {
		return fmt.Errorf("state.postgresql: connectionString: %w", err)
	}
	if cfg.maxConns > 0 {
		pc.MaxConns = cfg.maxConns
	}
	if cfg.maxConnIdleTime > 0 {
		pc.MaxConnIdleTime = cfg.maxConnIdleTime
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("state.postgresql: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("state.postgresql: connect to %s:%d: %w", pc.ConnConfig.Host, pc.ConnConfig.Port, err)
	}
	s.pool = pool
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		s.pool = nil
		return err
	}
	if cfg.cleanupInterval > 0 {
		loopCtx, stop := context.WithCancel(context.Background())
		s.stop = stop
		s.done.Add(1)
		go s.cleanupLoop(loopCtx)
	}
	return nil
}

// migrate creates the state and metadata tables, serialised across
// instances by an advisory lock, and refuses an existing table of another
// layout.
func (s *Store) migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, s.cfg.lockKey); err != nil {
			return fmt.Errorf("advisory lock: %w", err)
		}
		for _, q := range s.sql.migrate {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		var typ string
		if err := tx.QueryRow(ctx, s.sql.valueType, s.cfg.table).Scan(&typ); err != nil {
			return fmt.Errorf("reading the layout of %s: %w", s.cfg.table, err)
		}
		if typ != "bytea" {
			return fmt.Errorf("table %s has a %s value column, not bytea (a table of another layout, e.g. Dapr's v1 jsonb one): set tableName to a new table", s.cfg.table, typ)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state.postgresql: create tables: %w", err)
	}
	return nil
}

// Get reads one key; expired rows are never returned.
func (s *Store) Get(ctx context.Context, req *sdk.GetRequest) (*sdk.GetResponse, error) {
	if req.Key == "" {
		return nil, errors.New("state.postgresql: key is empty")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	var r row
	err := s.pool.QueryRow(ctx, s.sql.get, req.Key).Scan(&r.value, &r.isBinary, &r.etag, &r.expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return &sdk.GetResponse{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state.postgresql: get %q: %w", req.Key, err)
	}
	return &sdk.GetResponse{Found: true, Data: r.value, ETag: r.etag.String(), Metadata: r.metadata()}, nil
}

// BulkGet reads many keys with one query.
func (s *Store) BulkGet(ctx context.Context, reqs []*sdk.GetRequest) ([]sdk.BulkItem, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	keys := make([]string, len(reqs))
	for i, r := range reqs {
		keys[i] = r.Key
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, s.sql.bulkGet, keys)
	if err != nil {
		return nil, fmt.Errorf("state.postgresql: bulk get: %w", err)
	}
	found := make(map[string]sdk.BulkItem, len(keys))
	var (
		key string
		r   row
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &r.value, &r.isBinary, &r.etag, &r.expires}, func() error {
		found[key] = sdk.BulkItem{Key: key, Found: true, Data: r.value, ETag: r.etag.String(), Metadata: r.metadata()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state.postgresql: bulk get: %w", err)
	}
	out := make([]sdk.BulkItem, len(reqs))
	for i, k := range keys {
		if item, ok := found[k]; ok {
			out[i] = item
		} else {
			out[i] = sdk.BulkItem{Key: k}
		}
	}
	return out, nil
}

// row is one stored value as read back.
type row struct {
	value    []byte
	isBinary bool
	etag     pgtype.UUID
	expires  pgtype.Timestamptz
}

func (r *row) metadata() map[string]string {
	if !r.expires.Valid {
		return nil
	}
	return map[string]string{ttlExpireTimeKey: r.expires.Time.UTC().Format(time.RFC3339)}
}

// encodeValue returns the bytes to store (never nil: nil would be NULL) and
// whether they are "binary", i.e. not JSON that PostgreSQL can read as
// jsonb. Only JSON values take part in queries.
func encodeValue(v []byte) (value []byte, isBinary bool) {
	if v == nil {
		v = []byte{}
	}
	return v, !queryableJSON(v)
}

// queryableJSON reports whether v is JSON that casts to jsonb: valid UTF-8
// JSON without \u0000 (which jsonb rejects) or surrogate escapes (which it
// rejects when unpaired; treated as binary rather than checked).
func queryableJSON(v []byte) bool {
	if !utf8.Valid(v) || !json.Valid(v) {
		return false
	}
	for i := 0; i+5 < len(v); i++ {
		if v[i] != '\\' {
			continue
		}
		if v[i+1] == '\\' { // an escaped backslash: skip both
			i++
			continue
		}
		if v[i+1] == 'u' {
			hex := strings.ToLower(string(v[i+2 : i+6]))
			if hex == "0000" || (hex[0] == 'd' && hex[1] >= '8') {
				return false
			}
		}
	}
	return true
}

// Set writes one key.
func (s *Store) Set(ctx context.Context, req *sdk.SetRequest) error {
	st, err := s.setStmt(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	tag, err := s.pool.Exec(ctx, st.sql, st.args...)
	return st.check(tag, err)
}

// Delete removes one key.
func (s *Store) Delete(ctx context.Context, req *sdk.DeleteRequest) error {
	st, err := s.deleteStmt(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	tag, err := s.pool.Exec(ctx, st.sql, st.args...)
	return st.check(tag, err)
}

// Transact applies all operations in one database transaction: any failed
// etag check rolls everything back.
func (s *Store) Transact(ctx context.Context, ops []sdk.TxOp, _ map[string]string) error {
	stmts := make([]stmt, len(ops))
	for i, op := range ops {
		var err error
		switch {
		case op.Set != nil && op.Delete == nil:
			stmts[i], err = s.setStmt(op.Set)
		case op.Delete != nil && op.Set == nil:
			stmts[i], err = s.deleteStmt(op.Delete)
		default:
			err = fmt.Errorf("state.postgresql: operation %d: want exactly one of set and delete", i)
		}
		if err != nil {
			return err
		}
	}
	return s.inTx(ctx, stmts)
}

// BulkSet writes many keys in one transaction and one round trip.
func (s *Store) BulkSet(ctx context.Context, reqs []*sdk.SetRequest) error {
	stmts := make([]stmt, len(reqs))
	for i, r := range reqs {
		var err error
		if stmts[i], err = s.setStmt(r); err != nil {
			return err
		}
	}
	return s.inTx(ctx, stmts)
}

// BulkDelete removes many keys in one transaction and one round trip.
func (s *Store) BulkDelete(ctx context.Context, reqs []*sdk.DeleteRequest) error {
	stmts := make([]stmt, len(reqs))
	for i, r := range reqs {
		var err error
		if stmts[i], err = s.deleteStmt(r); err != nil {
			return err
		}
	}
	return s.inTx(ctx, stmts)
}

// inTx runs statements as one batch inside a transaction, committing only
// if every statement succeeded and every etag check held.
func (s *Store) inTx(ctx context.Context, stmts []stmt) error {
	if len(stmts) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		for _, st := range stmts {
			b.Queue(st.sql, st.args...)
		}
		res := tx.SendBatch(ctx, &b)
		for _, st := range stmts {
			tag, err := res.Exec()
			if err = st.check(tag, err); err != nil {
				_ = res.Close()
				return err
			}
		}
		if err := res.Close(); err != nil {
			return fmt.Errorf("state.postgresql: batch: %w", err)
		}
		return nil
	})
}

// stmt is one write with how to judge its outcome.
type stmt struct {
	sql     string
	args    []any
	what    string // "set" or "delete"
	key     string
	guarded bool // zero rows affected means the etag/first-write check failed
}

func (st stmt) check(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return fmt.Errorf("state.postgresql: %s %q: %w", st.what, st.key, err)
	}
	if st.guarded && tag.RowsAffected() == 0 {
		return fmt.Errorf("state.postgresql: %s %q: %w", st.what, st.key, sdk.ErrETagMismatch)
	}
	return nil
}

func (s *Store) setStmt(req *sdk.SetRequest) (stmt, error) {
	if req.Key == "" {
		return stmt{}, errors.New("state.postgresql: set: key is empty")
	}
	etag, err := parseETag(req.ETag)
	if err != nil {
		return stmt{}, fmt.Errorf("state.postgresql: set %q: %w", req.Key, err)
	}
	ttl, _, err := sdk.ParseTTL(req.Metadata)
	if err != nil {
		return stmt{}, fmt.Errorf("state.postgresql: set %q: %w", req.Key, err)
	}
	value, isBinary := encodeValue(req.Value)
	st := stmt{what: "set", key: req.Key, args: []any{req.Key, value, isBinary, int64(ttl / time.Second)}}
	switch {
	case etag.Valid:
		st.sql, st.guarded = s.sql.update, true
		st.args = append(st.args, etag)
	case req.Concurrency == sdk.FirstWrite:
		st.sql, st.guarded = s.sql.insert, true
	default:
		st.sql = s.sql.upsert
	}
	return st, nil
}

func (s *Store) deleteStmt(req *sdk.DeleteRequest) (stmt, error) {
	if req.Key == "" {
		return stmt{}, errors.New("state.postgresql: delete: key is empty")
	}
	etag, err := parseETag(req.ETag)
	if err != nil {
		return stmt{}, fmt.Errorf("state.postgresql: delete %q: %w", req.Key, err)
	}
	if etag.Valid {
		return stmt{what: "delete", key: req.Key, sql: s.sql.deleteETag, args: []any{req.Key, etag}, guarded: true}, nil
	}
	return stmt{what: "delete", key: req.Key, sql: s.sql.delete, args: []any{req.Key}}, nil
}

// parseETag reads an etag; etags are UUIDs, so anything else is invalid.
func parseETag(etag *string) (pgtype.UUID, error) {
	var u pgtype.UUID
	if etag == nil || *etag == "" {
		return u, nil
	}
	if err := u.Scan(*etag); err != nil {
		return u, fmt.Errorf("etag %q: %w", *etag, sdk.ErrETagInvalid)
	}
	return u, nil
}

// cleanupLoop deletes expired rows every cleanupInterval. Instances sharing
// a table take turns through a timestamp row in the metadata table, so the
// table is swept about once per interval however many sidecars run.
func (s *Store) cleanupLoop(ctx context.Context) {
	defer s.done.Done()
	t := time.NewTicker(s.cfg.cleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.cleanup(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Warn("deleting expired state failed", "table", s.cfg.table, "error", err)
			case n > 0:
				s.log.Debug("deleted expired state", "table", s.cfg.table, "rows", n)
			}
		}
	}
}

// cleanup deletes expired rows if no instance did so within the last
// interval, and returns how many it deleted.
func (s *Store) cleanup(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	var deleted int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A little slack so ticks of instances started together do not skip.
		due := s.cfg.cleanupInterval - s.cfg.cleanupInterval/10
		tag, err := tx.Exec(ctx, s.sql.claimCleanup, "last-cleanup-"+s.cfg.table, due.Milliseconds())
		if err != nil {
			return fmt.Errorf("claiming the cleanup: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // someone else swept recently
		}
		tag, err = tx.Exec(ctx, s.sql.deleteExpired)
		if err != nil {
			return fmt.Errorf("deleting expired rows: %w", err)
		}
		deleted = tag.RowsAffected()
		return nil
	})
	return deleted, err
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.pool == nil {
		return errors.New("state.postgresql: not initialised")
	}
	return s.pool.Ping(ctx)
}

// Close stops the cleanup loop and closes the connections.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
		s.done.Wait()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	return nil
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
	_ sdk.Querier       = (*Store)(nil)
	_ sdk.BulkGetter    = (*Store)(nil)
	_ sdk.BulkSetter    = (*Store)(nil)
	_ sdk.BulkDeleter   = (*Store)(nil)
	_ sdk.Pinger        = (*Store)(nil)
	_ sdk.Closer        = (*Store)(nil)
)
