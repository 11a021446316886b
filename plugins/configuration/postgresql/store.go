package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outrigger/outrigger/plugins/sdk"
)

const (
	defaultTable   = "configuration"
	defaultTimeout = 20 * time.Second
)

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,39}$`)

type config struct {
	connString string
	table      string
	timeout    time.Duration
}

// parse reads the metadata; unknown keys are ignored.
func parse(md sdk.Metadata) (config, error) {
	c := config{connString: strings.TrimSpace(md["connectionString"]), table: strings.TrimSpace(md["table"]), timeout: defaultTimeout}
	if c.connString == "" {
		return c, errors.New(`metadata "connectionString" is required (e.g. host=localhost user=postgres dbname=test, or a postgres:// URL)`)
	}
	if _, err := pgx.ParseConfig(c.connString); err != nil {
		return c, fmt.Errorf(`metadata "connectionString": %w`, err)
	}
	if c.table == "" {
		c.table = defaultTable
	}
	if !tableName.MatchString(c.table) {
		return c, fmt.Errorf("metadata \"table\"=%q: use up to 40 letters, digits and _", c.table)
	}
	if v := strings.TrimSpace(md["timeout"]); v != "" {
		d, err := time.ParseDuration(v)
		if n, nerr := strconv.Atoi(v); nerr == nil {
			d, err = time.Duration(n)*time.Second, nil
		}
		if err != nil || d <= 0 {
			return c, fmt.Errorf("metadata \"timeout\"=%q: want a positive duration like 20s or a number of seconds", v)
		}
		c.timeout = d
	}
	return c, nil
}

// channel is the NOTIFY channel for the table.
func (c config) channel() string { return "outrigger_configuration_" + strings.ToLower(c.table) }

// Store is the configuration.postgresql store.
type Store struct {
	log  *slog.Logger
	cfg  config
	pool *pgxpool.Pool
}

// New returns an uninitialised store.
func New(log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{log: log}
}

// Init connects, creates the table if missing and installs the trigger.
func (s *Store) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parse(md)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, cfg.connString)
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	if err := migrate(ctx, pool, cfg); err != nil {
		pool.Close()
		return err
	}
	s.cfg, s.pool = cfg, pool
	return nil
}

// migrate creates the table and the notify trigger, serialised between
// instances by an advisory lock.
func migrate(ctx context.Context, pool *pgxpool.Pool, cfg config) error {
	t, fn, trg := pgx.Identifier{cfg.table}.Sanitize(), pgx.Identifier{cfg.channel() + "_notify"}.Sanitize(), pgx.Identifier{cfg.channel() + "_trigger"}.Sanitize()
	stmts := []string{
		`SELECT pg_advisory_xact_lock(hashtext('outrigger-configuration-migrate'))`,
		`CREATE TABLE IF NOT EXISTS ` + t + ` (
			key text NOT NULL PRIMARY KEY,
			value text NOT NULL,
			version text NOT NULL,
			metadata jsonb
		)`,
		`CREATE OR REPLACE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF TG_OP = 'DELETE' THEN
				PERFORM pg_notify('` + cfg.channel() + `', OLD.key);
			ELSE
				PERFORM pg_notify('` + cfg.channel() + `', NEW.key);
				IF TG_OP = 'UPDATE' AND OLD.key IS DISTINCT FROM NEW.key THEN
					PERFORM pg_notify('` + cfg.channel() + `', OLD.key);
				END IF;
			END IF;
			RETURN NULL;
		END $$`,
		`DROP TRIGGER IF EXISTS ` + trg + ` ON ` + t,
		`CREATE TRIGGER ` + trg + ` AFTER INSERT OR UPDATE OR DELETE ON ` + t + ` FOR EACH ROW EXECUTE FUNCTION ` + fn + `()`,
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("preparing table %s: %w", cfg.table, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("preparing table %s: %w", cfg.table, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("preparing table %s: %w", cfg.table, err)
	}
	return nil
}

// Get reads the keys (every row when none are given).
func (s *Store) Get(ctx context.Context, req *sdk.ConfigurationGetRequest) (map[string]sdk.ConfigurationItem, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	q := `SELECT key, value, version, metadata FROM ` + pgx.Identifier{s.cfg.table}.Sanitize()
	args := []any{}
	if len(req.Keys) > 0 {
		q += ` WHERE key = ANY($1)`
		args = append(args, req.Keys)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.cfg.table, err)
	}
	out := map[string]sdk.ConfigurationItem{}
	for rows.Next() {
		var (
			key string
			it  sdk.ConfigurationItem
			md  []byte
		)
		if err := rows.Scan(&key, &it.Value, &it.Version, &md); err != nil {
			return nil, fmt.Errorf("reading %s: %w", s.cfg.table, err)
		}
		it.Metadata = decodeMetadata(md)
		out[key] = it
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.cfg.table, err)
	}
	return out, nil
}

// decodeMetadata turns a JSON object into string metadata (non-string
// values keep their JSON text).
func decodeMetadata(b []byte) map[string]string {
	out := map[string]string{}
	var m map[string]json.RawMessage
	if len(b) == 0 || json.Unmarshal(b, &m) != nil {
		return out
	}
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		} else {
			out[k] = string(v)
		}
	}
	return out
}

// Subscribe LISTENs on the table's channel on a connection of its own.
func (s *Store) Subscribe(ctx context.Context, req *sdk.ConfigurationSubscribeRequest, ready func(), h sdk.ConfigurationHandler) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	conn, err := pgx.Connect(cctx, s.cfg.connString)
	if err == nil {
		_, err = conn.Exec(cctx, `LISTEN `+pgx.Identifier{s.cfg.channel()}.Sanitize())
	}
	cancel()
	if err != nil {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("listening for changes: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("waiting for changes: %w", err)
		}
		key := n.Payload
		if len(req.Keys) > 0 && !slices.Contains(req.Keys, key) {
			continue
		}
		items, err := s.Get(ctx, &sdk.ConfigurationGetRequest{Keys: []string{key}})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("reading a changed key", "key", key, "err", err)
			continue
		}
		it, ok := items[key]
		if !ok {
			it = sdk.ConfigurationItem{Metadata: map[string]string{}} // deleted
		}
		if err := h(ctx, map[string]sdk.ConfigurationItem{key: it}); err != nil {
			return nil // the subscriber is gone
		}
	}
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.pool == nil {
		return errors.New("not initialised")
	}
	return s.pool.Ping(ctx)
}

// Close closes the pool.
func (s *Store) Close() error {
	if s.pool != nil {
		s.pool.Close()
	}
	return nil
}
