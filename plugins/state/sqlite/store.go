package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outrigger/outrigger/plugins/internal/sqlitebusy"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/outrigger/outrigger/plugins/sdk"
)

// Defaults, as in Dapr's state.sqlite.
const (
	defaultTableName         = "state"
	defaultMetadataTableName = "metadata"
	defaultTimeout           = 20 * time.Second
	defaultCleanupInterval   = time.Hour
	defaultBusyTimeout       = 2 * time.Second
)

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Store is the SQLite state store. One value serves one component instance.
type Store struct {
	cfg    config
	db     *sql.DB
	logger *slog.Logger

	stopCleanup context.CancelFunc
	cleanupDone chan struct{}
	closeOnce   sync.Once
}

type config struct {
	connectionString  string
	tableName         string
	metadataTableName string
	timeout           time.Duration
	cleanupInterval   time.Duration // <= 0 disables periodic cleanup
	busyTimeout       time.Duration
	disableWAL        bool
}

// New returns an uninitialised store; the SDK calls Init with the metadata.
func New() sdk.StateStore {
	return &Store{logger: slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "state.sqlite")}
}

// Capability markers: etags, TTLs. Transact, Query and Bulk* are methods below.
func (s *Store) ETags() {}
func (s *Store) TTL()   {}

func parseConfig(md sdk.Metadata) (config, error) {
	get := func(names ...string) string {
		for _, n := range names {
			for k, v := range md {
				if strings.EqualFold(k, n) {
					return strings.TrimSpace(v)
				}
			}
		}
		return ""
	}
	c := config{
		connectionString:  get("connectionString"),
		tableName:         get("tableName"),
		metadataTableName: get("metadataTableName"),
	}
	if c.connectionString == "" {
		return c, errors.New(`metadata "connectionString" is required (a file path, a "file:" URI or ":memory:")`)
	}
	if c.tableName == "" {
		c.tableName = defaultTableName
	}
	if c.metadataTableName == "" {
		c.metadataTableName = defaultMetadataTableName
	}
	for _, name := range []string{c.tableName, c.metadataTableName} {
		if !identifier.MatchString(name) {
			return c, fmt.Errorf("table name %q: use letters, digits and underscores only", name)
		}
	}
	if c.tableName == c.metadataTableName {
		return c, fmt.Errorf("tableName and metadataTableName are both %q", c.tableName)
	}
	var err error
	if c.timeout, err = parseDuration("timeout", get("timeout", "timeoutInSeconds"), defaultTimeout); err != nil {
		return c, err
	}
	if c.timeout <= 0 {
		return c, errors.New(`metadata "timeout" must be positive`)
	}
	if c.cleanupInterval, err = parseDuration("cleanupInterval", get("cleanupInterval", "cleanupIntervalInSeconds"), defaultCleanupInterval); err != nil {
		return c, err
	}
	if c.busyTimeout, err = parseDuration("busyTimeout", get("busyTimeout"), defaultBusyTimeout); err != nil {
		return c, err
	}
	if c.busyTimeout < 0 {
		return c, errors.New(`metadata "busyTimeout" must not be negative`)
	}
	if v := get("disableWAL"); v != "" {
		if c.disableWAL, err = strconv.ParseBool(v); err != nil {
			return c, fmt.Errorf(`metadata "disableWAL"=%q: not a boolean`, v)
		}
	}
	return c, nil
}

// parseDuration accepts Go durations ("20s", "1h") or whole seconds ("20").
func parseDuration(name, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("metadata %q=%q: want a duration like 20s or a number of seconds", name, v)
	}
	return d, nil
}

func (c config) inMemory() bool {
	return c.connectionString == ":memory:" || strings.Contains(c.connectionString, "mode=memory") ||
		strings.HasPrefix(c.connectionString, "file::memory:")
}

// dsn adds the driver parameters: busy timeout, BEGIN IMMEDIATE for
// transactions, WAL journal.
func (c config) dsn() string {
	params := []string{
		"_txlock=immediate",
		"_busy_timeout=" + strconv.FormatInt(c.busyTimeout.Milliseconds(), 10),
	}
	if !c.disableWAL && !c.inMemory() {
		// WAL with synchronous=NORMAL: a crash of the process loses nothing;
		// only an OS crash or power loss may drop the last commits.
		params = append(params, "_pragma=journal_mode(WAL)", "_pragma=synchronous(NORMAL)")
	}
	sep := "?"
	if strings.Contains(c.connectionString, "?") {
		sep = "&"
	}
	return c.connectionString + sep + strings.Join(params, "&")
}

// Init opens the database, creates the tables and starts TTL cleanup.
func (s *Store) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parseConfig(md)
	if err != nil {
		return err
	}
	s.cfg = cfg
	db, err := sql.Open("sqlite", cfg.dsn())
	if err != nil {
		return fmt.Errorf("opening sqlite %q: %w", cfg.connectionString, err)
	}
	if cfg.inMemory() {
		// Every connection to ":memory:" is a separate database: keep one.
		db.SetMaxOpenConns(1)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	// Sidecars starting together race to set up a shared file: retry while busy.
	if err := sqlitebusy.Retry(ctx, func(ctx context.Context) error { return migrate(ctx, db, cfg) }); err != nil {
		_ = db.Close()
		return err
	}
	s.db = db
	if cfg.cleanupInterval > 0 {
		cctx, stop := context.WithCancel(context.Background())
		s.stopCleanup, s.cleanupDone = stop, make(chan struct{})
		go s.cleanupLoop(cctx)
	}
	return nil
}

func migrate(ctx context.Context, db *sql.DB, cfg config) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + cfg.metadataTableName + ` (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + cfg.tableName + ` (
			key TEXT NOT NULL PRIMARY KEY,
			value BLOB NOT NULL,
			is_json INTEGER NOT NULL DEFAULT 0,
			etag TEXT NOT NULL,
			expires_at INTEGER,
			updated_at INTEGER NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS ` + cfg.tableName + `_expires_at ON ` + cfg.tableName + ` (expires_at) WHERE expires_at IS NOT NULL`,
		`INSERT INTO ` + cfg.metadataTableName + ` (key, value) VALUES ('schema-version', '1') ON CONFLICT (key) DO NOTHING`,
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("opening sqlite %q: %w", cfg.connectionString, err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("creating tables in %q: %w", cfg.connectionString, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("creating tables in %q: %w", cfg.connectionString, err)
	}
	return nil
}

// Close stops cleanup and closes the database.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.stopCleanup != nil {
			s.stopCleanup()
			<-s.cleanupDone
		}
		if s.db != nil {
			err = s.db.Close()
		}
	})
	return err
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.db == nil {
		return errors.New("not initialised")
	}
	return s.db.PingContext(ctx)
}

func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.timeout)
}

// execer is what single operations run on: the database or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func newETag() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const notExpired = `(expires_at IS NULL OR expires_at > ?)`

// Get reads one key; expired rows are never returned.
func (s *Store) Get(ctx context.Context, req *sdk.GetRequest) (*sdk.GetResponse, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	var (
		value   []byte
		etag    string
		expires sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx,
		`SELECT value, etag, expires_at FROM `+s.cfg.tableName+` WHERE key = ? AND `+notExpired,
		req.Key, time.Now().UnixMilli()).Scan(&value, &etag, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return &sdk.GetResponse{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", req.Key, err)
	}
	return &sdk.GetResponse{Found: true, Data: value, ETag: etag, Metadata: expiryMetadata(expires)}, nil
}

// expiryMetadata reports a TTL'd row's expiry as Dapr does.
func expiryMetadata(expires sql.NullInt64) map[string]string {
	if !expires.Valid {
		return nil
	}
	return map[string]string{"ttlExpireTime": time.UnixMilli(expires.Int64).UTC().Format(time.RFC3339)}
}

// Set writes one key in a single statement.
func (s *Store) Set(ctx context.Context, req *sdk.SetRequest) error {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	return s.set(ctx, s.db, req)
}

func (s *Store) set(ctx context.Context, db execer, req *sdk.SetRequest) error {
	ttl, hasTTL, err := sdk.ParseTTL(req.Metadata)
	if err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	var expires any
	if hasTTL {
		expires = now + ttl.Milliseconds()
	}
	value := req.Value
	if value == nil {
		value = []byte{}
	}
	isJSON := json.Valid(value)
	etag := newETag()
	t := s.cfg.tableName

	var res sql.Result
	switch {
	case req.ETag != nil:
		res, err = db.ExecContext(ctx,
			`UPDATE `+t+` SET value = ?, is_json = ?, etag = ?, expires_at = ?, updated_at = ? WHERE key = ? AND etag = ? AND `+notExpired,
			value, isJSON, etag, expires, now, req.Key, *req.ETag, now)
	case req.Concurrency == sdk.FirstWrite:
		// Insert, or replace only a row that has already expired.
		res, err = db.ExecContext(ctx,
			`INSERT INTO `+t+` (key, value, is_json, etag, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
			 ON CONFLICT (key) DO UPDATE SET value = excluded.value, is_json = excluded.is_json, etag = excluded.etag,
			   expires_at = excluded.expires_at, updated_at = excluded.updated_at
			 WHERE `+t+`.expires_at IS NOT NULL AND `+t+`.expires_at <= ?`,
			req.Key, value, isJSON, etag, expires, now, now)
	default:
		_, err = db.ExecContext(ctx,
			`INSERT INTO `+t+` (key, value, is_json, etag, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
			 ON CONFLICT (key) DO UPDATE SET value = excluded.value, is_json = excluded.is_json, etag = excluded.etag,
			   expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
			req.Key, value, isJSON, etag, expires, now)
		if err != nil {
			return fmt.Errorf("set %q: %w", req.Key, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("set %q: %w", req.Key, err)
	}
	return expectOneRow(res, "set", req.Key)
}

func expectOneRow(res sql.Result, op, key string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, key, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %q: %w", op, key, sdk.ErrETagMismatch)
	}
	return nil
}

// Delete removes one key; with an etag, only if it matches.
func (s *Store) Delete(ctx context.Context, req *sdk.DeleteRequest) error {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	return s.delete(ctx, s.db, req)
}

func (s *Store) delete(ctx context.Context, db execer, req *sdk.DeleteRequest) error {
	t := s.cfg.tableName
	if req.ETag == nil {
		if _, err := db.ExecContext(ctx, `DELETE FROM `+t+` WHERE key = ?`, req.Key); err != nil {
			return fmt.Errorf("delete %q: %w", req.Key, err)
		}
		return nil
	}
	res, err := db.ExecContext(ctx, `DELETE FROM `+t+` WHERE key = ? AND etag = ? AND `+notExpired,
		req.Key, *req.ETag, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("delete %q: %w", req.Key, err)
	}
	return expectOneRow(res, "delete", req.Key)
}

// Transact applies every operation in one BEGIN IMMEDIATE transaction.
func (s *Store) Transact(ctx context.Context, ops []sdk.TxOp, _ map[string]string) error {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for i, op := range ops {
			var err error
			switch {
			case op.Set != nil:
				err = s.set(ctx, tx, op.Set)
			case op.Delete != nil:
				err = s.delete(ctx, tx, op.Delete)
			default:
				err = errors.New("neither set nor delete")
			}
			if err != nil {
				return fmt.Errorf("transaction operation %d: %w", i, err)
			}
		}
		return nil
	})
}

func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE via _txlock
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// BulkGet reads many keys with one statement per batch.
func (s *Store) BulkGet(ctx context.Context, reqs []*sdk.GetRequest) ([]sdk.BulkItem, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	found := make(map[string]sdk.BulkItem, len(reqs))
	const batch = 500 // well under SQLite's bound-parameter limit
	for start := 0; start < len(reqs); start += batch {
		part := reqs[start:min(start+batch, len(reqs))]
		args := make([]any, 0, len(part)+1)
		for _, r := range part {
			args = append(args, r.Key)
		}
		args = append(args, time.Now().UnixMilli())
		rows, err := s.db.QueryContext(ctx,
			`SELECT key, value, etag, expires_at FROM `+s.cfg.tableName+
				` WHERE key IN (?`+strings.Repeat(", ?", len(part)-1)+`) AND `+notExpired, args...)
		if err != nil {
			return nil, fmt.Errorf("bulk get: %w", err)
		}
		for rows.Next() {
			var (
				it      sdk.BulkItem
				expires sql.NullInt64
			)
			if err := rows.Scan(&it.Key, &it.Data, &it.ETag, &expires); err != nil {
				rows.Close()
				return nil, fmt.Errorf("bulk get: %w", err)
			}
			it.Found, it.Metadata = true, expiryMetadata(expires)
			found[it.Key] = it
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("bulk get: %w", err)
		}
	}
	out := make([]sdk.BulkItem, len(reqs))
	for i, r := range reqs {
		if it, ok := found[r.Key]; ok {
			out[i] = it
		} else {
			out[i] = sdk.BulkItem{Key: r.Key}
		}
	}
	return out, nil
}

// BulkSet writes many keys in one transaction.
func (s *Store) BulkSet(ctx context.Context, reqs []*sdk.SetRequest) error {
	ops := make([]sdk.TxOp, len(reqs))
	for i, r := range reqs {
		ops[i].Set = r
	}
	return s.Transact(ctx, ops, nil)
}

// BulkDelete removes many keys in one transaction.
func (s *Store) BulkDelete(ctx context.Context, reqs []*sdk.DeleteRequest) error {
	ops := make([]sdk.TxOp, len(reqs))
	for i, r := range reqs {
		ops[i].Delete = r
	}
	return s.Transact(ctx, ops, nil)
}

// cleanupLoop deletes expired rows every cleanupInterval. Several processes
// sharing the file coordinate through the metadata table so only one cleans
// per interval.
func (s *Store) cleanupLoop(ctx context.Context) {
	defer close(s.cleanupDone)
	tick := time.NewTicker(s.cfg.cleanupInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n, err := s.cleanupExpired(ctx)
			if err != nil && ctx.Err() == nil {
				s.logger.Warn("TTL cleanup failed", "err", err)
			} else if n > 0 {
				s.logger.Debug("TTL cleanup", "deleted", n)
			}
		}
	}
}

func (s *Store) cleanupExpired(ctx context.Context) (int64, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	var deleted int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixMilli()
		var last sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT value FROM `+s.cfg.metadataTableName+` WHERE key = 'last-cleanup'`).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("reading last cleanup: %w", err)
		}
		if ms, err := strconv.ParseInt(last.String, 10, 64); err == nil && now-ms < s.cfg.cleanupInterval.Milliseconds()*9/10 {
			return nil // another process cleaned recently
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM `+s.cfg.tableName+` WHERE expires_at IS NOT NULL AND expires_at <= ?`, now)
		if err != nil {
			return fmt.Errorf("deleting expired rows: %w", err)
		}
		deleted, _ = res.RowsAffected()
		_, err = tx.ExecContext(ctx, `INSERT INTO `+s.cfg.metadataTableName+` (key, value) VALUES ('last-cleanup', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.FormatInt(now, 10))
		if err != nil {
			return fmt.Errorf("recording cleanup: %w", err)
		}
		return nil
	})
	return deleted, err
}
