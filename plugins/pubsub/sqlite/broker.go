package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outrigger/outrigger/plugins/internal/sqlitebusy"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/outrigger/outrigger/plugins/sdk"
)

const (
	// claimBatch bounds the messages one claim transaction hands out.
	claimBatch = 64
	// idleRecheck is the longest a subscription sleeps without a signal
	// (a safety net; changes and lease expiries wake it sooner).
	idleRecheck = time.Second
	// retryDelay is the pause after a failed claim (e.g. database busy).
	retryDelay = 100 * time.Millisecond
	// nackBackoff is the delay before a message nacked twice comes again;
	// it doubles with every further nack, up to visibilityTimeout.
	nackBackoff = 100 * time.Millisecond
)

// Broker is the pubsub.sqlite component: a durable log in one SQLite file.
type Broker struct {
	cfg   config
	db    *sql.DB
	t     tables
	watch *watcher

	stop       chan struct{}
	wg         sync.WaitGroup
	closed     atomic.Bool
	ops        chan writeOp  // writes waiting for the group-commit loop
	writerDone chan struct{} // closed when the loop has stopped
}

// New returns an unconfigured broker; the SDK calls Init.
func New() sdk.PubSub { return &Broker{} }

// Capability markers and interfaces.
var (
	_ sdk.MessageTTLer  = (*Broker)(nil)
	_ sdk.BulkPublisher = (*Broker)(nil)
	_ sdk.Pinger        = (*Broker)(nil)
	_ sdk.Closer        = (*Broker)(nil)
)

// MessageTTL marks that publish metadata "ttlInSeconds" is honoured.
func (b *Broker) MessageTTL() {}

// tables are the table names for one prefix.
type tables struct{ messages, groups, leases string }

// Init opens the database, creates the tables and starts the change watcher
// and the retention sweep.
func (b *Broker) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parseConfig(md)
	if err != nil {
		return err
	}
	if err := prepareFile(&cfg); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", cfg.dsn())
	if err != nil {
		return fmt.Errorf("opening sqlite %q: %w", cfg.connectionString, err)
	}
	if cfg.inMemory() {
		// Every connection to ":memory:" is a separate database: keep one.
		db.SetMaxOpenConns(1)
	}
	b.cfg, b.db = cfg, db
	b.t = tables{messages: cfg.tablePrefix + "messages", groups: cfg.tablePrefix + "groups", leases: cfg.tablePrefix + "leases"}
	ictx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	// Sidecars starting together race to set up a shared file: retry while busy.
	if err := sqlitebusy.Retry(ictx, b.migrate); err != nil {
		_ = db.Close()
		b.db = nil
		return err
	}
	b.stop = make(chan struct{})
	b.ops, b.writerDone = make(chan writeOp, maxGroupCommit), make(chan struct{})
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.writeLoop() }()
	b.watch = newWatcher()
	if !cfg.inMemory() {
		// Other processes' commits are seen through PRAGMA data_version on
		// a connection of our own, taken when the first subscription
		// starts; in memory there are no other processes.
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.watch.poll(db, b.stop) }()
	}
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.sweepLoop() }()
	return nil
}

// prepareFile expands a leading "~/" in a plain file path and creates its
// folder, so a fresh machine needs no setup.
func prepareFile(cfg *config) error {
	p := cfg.connectionString
	if cfg.inMemory() || strings.HasPrefix(p, "file:") {
		return nil
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("connectionString %q: %w", p, err)
		}
		p = filepath.Join(home, rest)
		cfg.connectionString = p
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("creating the folder of %q: %w", p, err)
	}
	return nil
}

func (b *Broker) migrate(ctx context.Context) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + b.t.messages + ` (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			topic TEXT NOT NULL,
			data BLOB NOT NULL,
			content_type TEXT NOT NULL DEFAULT '',
			metadata TEXT,
			published_at INTEGER NOT NULL,
			expires_at INTEGER)`,
		`CREATE INDEX IF NOT EXISTS ` + b.t.messages + `_topic ON ` + b.t.messages + ` (topic, id)`,
		`CREATE INDEX IF NOT EXISTS ` + b.t.messages + `_published ON ` + b.t.messages + ` (published_at)`,
		`CREATE TABLE IF NOT EXISTS ` + b.t.groups + ` (
			topic TEXT NOT NULL,
			grp TEXT NOT NULL,
			read_pos INTEGER NOT NULL,
			PRIMARY KEY (topic, grp))`,
		`CREATE TABLE IF NOT EXISTS ` + b.t.leases + ` (
			topic TEXT NOT NULL,
			grp TEXT NOT NULL,
			msg_id INTEGER NOT NULL,
			lease_until INTEGER NOT NULL,
			attempts INTEGER NOT NULL,
			PRIMARY KEY (topic, grp, msg_id))`,
		`CREATE INDEX IF NOT EXISTS ` + b.t.leases + `_due ON ` + b.t.leases + ` (topic, grp, lease_until)`,
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("creating tables: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("creating tables: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("creating tables: %w", err)
	}
	return nil
}

// Close stops the background work and closes the database. It is safe on
// a broker that was never initialised.
func (b *Broker) Close() error {
	if b.db == nil || b.closed.Swap(true) {
		return nil
	}
	close(b.stop)
	b.wg.Wait()
	// b.db stays set: subscriptions still winding down get "database is
	// closed" errors, never a nil pointer.
	return b.db.Close()
}

// Ping checks the database answers.
func (b *Broker) Ping(ctx context.Context) error { return b.db.PingContext(ctx) }

func nowMillis() int64 { return time.Now().UnixMilli() }

// Publish appends one message to the log.
func (b *Broker) Publish(ctx context.Context, req *sdk.PublishRequest) error {
	_, err := b.BulkPublish(ctx, req.Topic, []sdk.BulkEntry{{Data: req.Data, ContentType: req.ContentType, Metadata: req.Metadata}}, nil)
	return err
}

// BulkPublish appends every entry in one transaction: all or none.
func (b *Broker) BulkPublish(ctx context.Context, topic string, entries []sdk.BulkEntry, md map[string]string) ([]sdk.BulkFailure, error) {
	if topic == "" {
		return nil, errors.New("topic is empty")
	}
	type row struct {
		data     []byte
		ct       string
		meta     *string
		expireAt *int64
	}
	now := nowMillis()
	rows := make([]row, len(entries))
	for i, e := range entries {
		emd := e.Metadata
		if len(emd) == 0 {
			emd = md
		}
		ttl, ok, err := sdk.ParseTTL(emd)
		if err != nil {
			return nil, err
		}
		r := row{data: e.Data, ct: e.ContentType}
		if r.data == nil {
			r.data = []byte{}
		}
		if ok {
			exp := now + ttl.Milliseconds()
			r.expireAt = &exp
		}
		if len(emd) > 0 {
			j, err := json.Marshal(emd)
			if err != nil {
				return nil, fmt.Errorf("encoding metadata: %w", err)
			}
			s := string(j)
			r.meta = &s
		}
		rows[i] = r
	}
	insert := `INSERT INTO ` + b.t.messages + ` (topic, data, content_type, metadata, published_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`
	err := b.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, insert, topic, r.data, r.ct, r.meta, now, r.expireAt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("publishing: %w", err)
	}
	b.notify()
	return nil, nil
}

// Subscribe delivers the topic's messages to h as consumer group
// cfg.consumerID until ctx ends. Each message is leased to this subscriber
// for visibilityTimeout; an ack deletes the lease, a nack (or the end of the
// subscription) makes it due at once, and a lease that runs out (the
// process died) is handed out again.
func (b *Broker) Subscribe(ctx context.Context, req sdk.SubscribeRequest, h sdk.MessageHandler) error {
	if req.Topic == "" {
		return errors.New("subscribe: topic is empty")
	}
	if err := b.ensureGroup(ctx, req.Topic); err != nil {
		return err
	}
	b.watch.subscribe()
	defer b.watch.unsubscribe()

	slots := make(chan struct{}, b.cfg.maxInFlight)
	freed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		changed := b.watch.changed() // before the claim, so no change is missed
		free := cap(slots) - len(slots)
		var (
			msgs   []*sdk.Message
			nextAt int64
			err    error
		)
		if free > 0 {
			msgs, nextAt, err = b.claim(ctx, req.Topic, min(free, claimBatch))
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			select { // transient (busy database, disk): retry
			case <-ctx.Done():
				return nil
			case <-time.After(retryDelay):
				continue
			}
		}
		for _, m := range msgs {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				herr := h(ctx, m)
				b.settle(req.Topic, m.ID, herr)
				<-slots
				select {
				case freed <- struct{}{}:
				default:
				}
			}()
		}
		if len(msgs) > 0 && len(msgs) == min(free, claimBatch) {
			continue // there may be more waiting
		}
		wait := idleRecheck
		if nextAt > 0 {
			wait = min(wait, time.Duration(nextAt-nowMillis())*time.Millisecond)
		}
		if wait <= 0 {
			wait = time.Millisecond
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-changed:
		case <-freed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// ensureGroup creates the consumer group's read position on first use: at
// the start of the retained log (initialOffset oldest) or at its end.
func (b *Broker) ensureGroup(ctx context.Context, topic string) error {
	start := `0`
	if b.cfg.initialOffset == offsetNewest {
		start = `(SELECT COALESCE(MAX(id), 0) FROM ` + b.t.messages + `)`
	}
	err := b.exec(`INSERT OR IGNORE INTO `+b.t.groups+` (topic, grp, read_pos) VALUES (?, ?, `+start+`)`, topic, b.cfg.consumerID)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("creating consumer group %q on %q: %w", b.cfg.consumerID, topic, err)
	}
	return nil
}

// claim leases up to n messages in one transaction: first leases that are
// due (nacked, abandoned or timed out), then messages past the group's read
// position. It returns them and the time (unix ms) the next lease falls due
// (0: none).
func (b *Broker) claim(ctx context.Context, topic string, n int) ([]*sdk.Message, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	group := b.cfg.consumerID
	now := nowMillis()
	until := now + b.cfg.visibilityTimeout.Milliseconds()

	// A read first: most wake-ups find nothing, and a read takes no write lock.
	var due, fresh bool
	err := b.db.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM `+b.t.leases+` WHERE topic = ? AND grp = ? AND lease_until <= ?),
		EXISTS (SELECT 1 FROM `+b.t.messages+` WHERE topic = ? AND id > (SELECT read_pos FROM `+b.t.groups+` WHERE topic = ? AND grp = ?))`,
		topic, group, now, topic, topic, group).Scan(&due, &fresh)
	if err != nil {
		return nil, 0, fmt.Errorf("checking for messages: %w", err)
	}
	if !due && !fresh {
		next, err := b.nextDue(ctx, b.db, topic)
		return nil, next, err
	}

	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("claiming: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var out []*sdk.Message
	type leased struct {
		id      int64
		exists  bool
		expired bool
		m       *sdk.Message
	}
	scan := func(rows *sql.Rows) ([]leased, error) {
		defer rows.Close()
		var ls []leased
		for rows.Next() {
			var (
				id       int64
				mid      sql.NullInt64
				data     []byte
				ct, meta sql.NullString
				exp      sql.NullInt64
			)
			if err := rows.Scan(&id, &mid, &data, &ct, &meta, &exp); err != nil {
				return nil, err
			}
			l := leased{id: id, exists: mid.Valid, expired: exp.Valid && exp.Int64 <= now}
			if l.exists && !l.expired {
				m := &sdk.Message{ID: strconv.FormatInt(id, 10), Topic: topic, Data: data, ContentType: ct.String}
				if meta.Valid && meta.String != "" {
					if err := json.Unmarshal([]byte(meta.String), &m.Metadata); err != nil {
						return nil, fmt.Errorf("message %d: decoding metadata: %w", id, err)
					}
				}
				l.m = m
			}
			ls = append(ls, l)
		}
		return ls, rows.Err()
	}

	if due {
		rows, err := tx.QueryContext(ctx, `SELECT l.msg_id, m.id, m.data, m.content_type, m.metadata, m.expires_at
			FROM `+b.t.leases+` l LEFT JOIN `+b.t.messages+` m ON m.id = l.msg_id
			WHERE l.topic = ? AND l.grp = ? AND l.lease_until <= ? ORDER BY l.msg_id LIMIT ?`, topic, group, now, n)
		if err != nil {
			return nil, 0, fmt.Errorf("claiming due messages: %w", err)
		}
		ls, err := scan(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("claiming due messages: %w", err)
		}
		for _, l := range ls {
			if l.m == nil { // gone (retention) or expired: nothing to redeliver
				_, err = tx.ExecContext(ctx, `DELETE FROM `+b.t.leases+` WHERE topic = ? AND grp = ? AND msg_id = ?`, topic, group, l.id)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE `+b.t.leases+` SET lease_until = ?, attempts = attempts + 1 WHERE topic = ? AND grp = ? AND msg_id = ?`, until, topic, group, l.id)
				out = append(out, l.m)
			}
			if err != nil {
				return nil, 0, fmt.Errorf("leasing message %d: %w", l.id, err)
			}
		}
	}
	if left := n - len(out); left > 0 && fresh {
		rows, err := tx.QueryContext(ctx, `SELECT id, id, data, content_type, metadata, expires_at FROM `+b.t.messages+`
			WHERE topic = ? AND id > (SELECT read_pos FROM `+b.t.groups+` WHERE topic = ? AND grp = ?) ORDER BY id LIMIT ?`,
			topic, topic, group, left)
		if err != nil {
			return nil, 0, fmt.Errorf("claiming new messages: %w", err)
		}
		ls, err := scan(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("claiming new messages: %w", err)
		}
		var pos int64
		for _, l := range ls {
			pos = l.id
			if l.m == nil {
				continue // expired before anyone read it
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO `+b.t.leases+` (topic, grp, msg_id, lease_until, attempts) VALUES (?, ?, ?, ?, 1)`, topic, group, l.id, until); err != nil {
				return nil, 0, fmt.Errorf("leasing message %d: %w", l.id, err)
			}
			out = append(out, l.m)
		}
		if pos > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE `+b.t.groups+` SET read_pos = ? WHERE topic = ? AND grp = ? AND read_pos < ?`, pos, topic, group, pos); err != nil {
				return nil, 0, fmt.Errorf("advancing the read position: %w", err)
			}
		}
	}
	next, err := b.nextDue(ctx, tx, topic)
	if err != nil {
		return nil, 0, err
	}
	if err := tx.Commit(); err != nil {
		return nil, 0, fmt.Errorf("claiming: %w", err)
	}
	return out, next, nil
}

// notify wakes this instance's subscriptions after its own commit when no
// poller does. With a file, the data_version poller wakes every consumer in
// every process, this one included, the same way: waking our own first
// would let the publishing process win every message from competing
// consumers elsewhere.
func (b *Broker) notify() {
	if b.cfg.inMemory() {
		b.watch.fire()
	}
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// nextDue is when the group's earliest lease on topic falls due (0: none).
func (b *Broker) nextDue(ctx context.Context, q queryer, topic string) (int64, error) {
	var next sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT MIN(lease_until) FROM `+b.t.leases+` WHERE topic = ? AND grp = ?`, topic, b.cfg.consumerID).Scan(&next)
	if err != nil {
		return 0, fmt.Errorf("reading the next lease expiry: %w", err)
	}
	return next.Int64, nil
}

// settle records a handler's verdict: ack deletes the lease, nack makes it
// due at once. It runs after the subscription's context may have ended, so
// it uses its own, and retries a failed write a few times; if it still
// fails the lease simply runs out and the message comes again after
// visibilityTimeout (at-least-once).
func (b *Broker) settle(topic, id string, herr error) {
	msgID, _ := strconv.ParseInt(id, 10, 64)
	stmt := `DELETE FROM ` + b.t.leases + ` WHERE topic = ? AND grp = ? AND msg_id = ?`
	args := []any{topic, b.cfg.consumerID, msgID}
	if herr != nil {
		// The first nack makes the message due at once; repeated nacks of
		// the same message back off (100 ms, 200 ms, … up to
		// visibilityTimeout) so a message the app keeps refusing cannot
		// spin a hot loop.
		stmt = `UPDATE ` + b.t.leases + ` SET lease_until = CASE WHEN attempts <= 1 THEN 0
			ELSE ? + MIN(?, ` + strconv.FormatInt(nackBackoff.Milliseconds(), 10) + ` << MIN(attempts - 2, 20)) END
			WHERE topic = ? AND grp = ? AND msg_id = ?`
		args = append([]any{nowMillis(), b.cfg.visibilityTimeout.Milliseconds()}, args...)
	}
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
		}
		if b.exec(stmt, args...) == nil {
			if herr != nil {
				b.notify()
			}
			return
		}
	}
}

// sweepLoop deletes messages past the retention period (and expired ones)
// with their leases; every process sharing the file may run it, the
// statements are idempotent.
func (b *Broker) sweepLoop() {
	every := min(b.cfg.retentionPeriod/10, time.Minute)
	every = max(every, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			_ = b.sweep()
		}
	}
}

func (b *Broker) sweep() error {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.timeout)
	defer cancel()
	now := nowMillis()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, `DELETE FROM `+b.t.messages+` WHERE published_at < ? OR expires_at <= ?`, now-b.cfg.retentionPeriod.Milliseconds(), now)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+b.t.leases+` WHERE msg_id NOT IN (SELECT id FROM `+b.t.messages+`)`); err != nil {
			return err
		}
	}
	return tx.Commit()
}
