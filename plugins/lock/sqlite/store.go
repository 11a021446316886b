package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outrigger/outrigger/plugins/internal/sqlitebusy"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/outrigger/outrigger/plugins/sdk"
)

const (
	defaultTable           = "locks"
	defaultTimeout         = 20 * time.Second
	defaultBusyTimeout     = 2 * time.Second
	defaultCleanupInterval = time.Hour
)

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

type config struct {
	connectionString string
	table            string
	timeout          time.Duration
	busyTimeout      time.Duration
	cleanupInterval  time.Duration
	disableWAL       bool
}

func parse(md sdk.Metadata) (config, error) {
	get := func(k string) string {
		for mk, v := range md {
			if strings.EqualFold(mk, k) {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	c := config{connectionString: get("connectionString"), table: get("tableName")}
	if c.connectionString == "" {
		return c, errors.New(`metadata "connectionString" is required (a file path such as locks.db, or a "file:" URI)`)
	}
	if c.table == "" {
		c.table = defaultTable
	}
	if !tableName.MatchString(c.table) {
		return c, fmt.Errorf("metadata \"tableName\"=%q: use letters, digits and _ only", c.table)
	}
	var err error
	if c.timeout, err = duration("timeout", get("timeout"), defaultTimeout); err != nil {
		return c, err
	}
	if c.timeout <= 0 {
		return c, errors.New(`metadata "timeout" must be positive`)
	}
	if c.busyTimeout, err = duration("busyTimeout", get("busyTimeout"), defaultBusyTimeout); err != nil {
		return c, err
	}
	if c.busyTimeout < 0 {
		return c, errors.New(`metadata "busyTimeout" must not be negative`)
	}
	if c.cleanupInterval, err = duration("cleanupInterval", get("cleanupInterval"), defaultCleanupInterval); err != nil {
		return c, err
	}
	if v := get("disableWAL"); v != "" {
		if c.disableWAL, err = strconv.ParseBool(v); err != nil {
			return c, fmt.Errorf("metadata \"disableWAL\"=%q: want true or false", v)
		}
	}
	return c, nil
}

func duration(name, v string, def time.Duration) (time.Duration, error) {
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

// dsn adds busy timeout, BEGIN IMMEDIATE transactions and the WAL journal.
func (c config) dsn() string {
	params := []string{"_txlock=immediate", "_busy_timeout=" + strconv.FormatInt(c.busyTimeout.Milliseconds(), 10)}
	if !c.disableWAL && !c.inMemory() {
		params = append(params, "_pragma=journal_mode(WAL)", "_pragma=synchronous(NORMAL)")
	}
	sep := "?"
	if strings.Contains(c.connectionString, "?") {
		sep = "&"
	}
	return c.connectionString + sep + strings.Join(params, "&")
}

// Store is the lock.sqlite lock store.
type Store struct {
	log *slog.Logger
	cfg config
	db  *sql.DB
	now func() time.Time

	stopCleanup context.CancelFunc
	cleanupDone chan struct{}
	closeOnce   sync.Once
}

// New returns an uninitialised store.
func New(log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{log: log, now: time.Now}
}

// Init opens the database, creates the table and starts the sweep.
func (s *Store) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parse(md)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", cfg.dsn())
	if err != nil {
		return fmt.Errorf("opening sqlite %q: %w", cfg.connectionString, err)
	}
	if cfg.inMemory() {
		db.SetMaxOpenConns(1) // every ":memory:" connection is its own database
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	// Sidecars starting together race to set up a shared file: retry while busy.
	err = sqlitebusy.Retry(ctx, func(ctx context.Context) error {
		_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+cfg.table+` (
		resource_id TEXT NOT NULL PRIMARY KEY,
		owner TEXT NOT NULL,
		expires_at INTEGER NOT NULL
	)`)
		return err
	})
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("creating table %s in %q: %w", cfg.table, cfg.connectionString, err)
	}
	s.cfg, s.db = cfg, db
	if err := s.sweep(ctx); err != nil {
		s.log.Warn("sweeping expired locks", "err", err)
	}
	if cfg.cleanupInterval > 0 {
		cctx, stop := context.WithCancel(context.Background())
		s.stopCleanup, s.cleanupDone = stop, make(chan struct{})
		go s.cleanupLoop(cctx)
	}
	return nil
}

func (s *Store) nowMillis() int64 { return s.now().UnixMilli() }

// TryLock takes the lease when the row is absent or expired, in one statement.
func (s *Store) TryLock(ctx context.Context, req *sdk.TryLockRequest) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	return s.tryLock(ctx, s.db, req)
}

// execer is *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// tryLock inserts the lease, or takes over an expired one.
func (s *Store) tryLock(ctx context.Context, db execer, req *sdk.TryLockRequest) (bool, error) {
	now := s.nowMillis()
	res, err := db.ExecContext(ctx, `INSERT INTO `+s.cfg.table+` (resource_id, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (resource_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE `+s.cfg.table+`.expires_at <= ?`,
		req.ResourceID, req.LockOwner, now+int64(req.ExpiryInSeconds)*1000, now)
	if err != nil {
		return false, fmt.Errorf("locking %q: %w", req.ResourceID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("locking %q: %w", req.ResourceID, err)
	}
	return n == 1, nil
}

// BulkTryLock takes several leases in one transaction (one commit), in
// request order. Any failure fails the whole call: the SDK then runs each
// TryLock on its own.
func (s *Store) BulkTryLock(ctx context.Context, reqs []*sdk.TryLockRequest) ([]sdk.TryLockResult, error) {
	out := make([]sdk.TryLockResult, len(reqs))
	err := s.inTx(ctx, fmt.Sprintf("locking %d resources", len(reqs)), func(ctx context.Context, tx *sql.Tx) (err error) {
		for i, r := range reqs {
			if out[i].Success, err = s.tryLock(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Unlock deletes the row for its owner; missing or expired rows do not exist.
func (s *Store) Unlock(ctx context.Context, req *sdk.UnlockRequest) (st sdk.UnlockStatus, err error) {
	err = s.inTx(ctx, fmt.Sprintf("unlocking %q", req.ResourceID), func(ctx context.Context, tx *sql.Tx) error {
		st, err = s.unlock(ctx, tx, req)
		return err
	})
	return st, err
}

// BulkUnlock releases several leases in one transaction, as BulkTryLock.
func (s *Store) BulkUnlock(ctx context.Context, reqs []*sdk.UnlockRequest) ([]sdk.UnlockResult, error) {
	out := make([]sdk.UnlockResult, len(reqs))
	err := s.inTx(ctx, fmt.Sprintf("unlocking %d resources", len(reqs)), func(ctx context.Context, tx *sql.Tx) (err error) {
		for i, r := range reqs {
			if out[i].Status, err = s.unlock(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// inTx runs fn in one BEGIN IMMEDIATE transaction under the store's
// timeout and commits it; what names the work in errors.
func (s *Store) inTx(ctx context.Context, what string, fn func(context.Context, *sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE via _txlock
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// unlock releases req's lease within tx.
func (s *Store) unlock(ctx context.Context, tx *sql.Tx, req *sdk.UnlockRequest) (sdk.UnlockStatus, error) {
	var (
		owner   string
		expires int64
	)
	err := tx.QueryRowContext(ctx, `SELECT owner, expires_at FROM `+s.cfg.table+` WHERE resource_id = ?`, req.ResourceID).Scan(&owner, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return sdk.LockDoesNotExist, nil
	case err != nil:
		return 0, fmt.Errorf("unlocking %q: %w", req.ResourceID, err)
	case expires <= s.nowMillis():
		return sdk.LockDoesNotExist, nil
	case owner != req.LockOwner:
		return sdk.LockBelongsToOthers, nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+s.cfg.table+` WHERE resource_id = ?`, req.ResourceID); err != nil {
		return 0, fmt.Errorf("unlocking %q: %w", req.ResourceID, err)
	}
	return sdk.UnlockSuccess, nil
}

// sweep deletes expired leases.
func (s *Store) sweep(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM `+s.cfg.table+` WHERE expires_at <= ?`, s.nowMillis())
	return err
}

func (s *Store) cleanupLoop(ctx context.Context) {
	defer close(s.cleanupDone)
	t := time.NewTicker(s.cfg.cleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
			if err := s.sweep(sctx); err != nil && ctx.Err() == nil {
				s.log.Warn("sweeping expired locks", "err", err)
			}
			cancel()
		}
	}
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.db == nil {
		return errors.New("not initialised")
	}
	return s.db.PingContext(ctx)
}

// Close stops the sweep and closes the database.
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
