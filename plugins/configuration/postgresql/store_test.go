package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const (
	connString    = "host=127.0.0.1 user=postgres dbname=test sslmode=disable"
	startPostgres = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)

// needPostgres returns a pool to the local server and a fresh table name
// whose table and trigger function are dropped when the test ends.
func needPostgres(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, connString)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		t.Fatalf("PostgreSQL is not reachable with %q (%v); start it with:\n\t%s", connString, err, startPostgres)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	table := "conf_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cfg := config{table: table}
		_, _ = pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{table}.Sanitize())
		_, _ = pool.Exec(ctx, `DROP FUNCTION IF EXISTS `+pgx.Identifier{cfg.channel() + "_notify"}.Sanitize()+`()`)
		pool.Close()
	})
	return pool, table
}

func TestConformance(t *testing.T) {
	pool, table := needPostgres(t)
	// The table does not exist yet: Init must create it.
	md := sdk.Metadata{"connectionString": connString, "table": table}
	first := New(nil)
	if err := first.Init(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	_ = first.Close()
	set := func(ctx context.Context, key, value, version string) error {
		_, err := pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{table}.Sanitize()+` (key, value, version, metadata) VALUES ($1, $2, $3, '{"owner":"test","n":1}')
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version`, key, value, version)
		return err
	}
	sdktest.ExerciseConfigurationStore(t, func() sdk.ConfigurationStore { return New(nil) }, md, set)
}

func TestMetadataAndDeletes(t *testing.T) {
	pool, table := needPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s := New(nil)
	if err := s.Init(ctx, sdk.Metadata{"connectionString": connString, "table": table, "timeout": "5"}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tbl := pgx.Identifier{table}.Sanitize()
	if _, err := pool.Exec(ctx, `INSERT INTO `+tbl+` VALUES ('k', 'v', '1', '{"owner":"ops","n":2}')`); err != nil {
		t.Fatal(err)
	}
	items, err := s.Get(ctx, &sdk.ConfigurationGetRequest{Keys: []string{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	if md := items["k"].Metadata; md["owner"] != "ops" || md["n"] != "2" {
		t.Fatalf("metadata %v", md)
	}

	sctx, stop := context.WithCancel(ctx)
	ready := make(chan struct{})
	got := make(chan sdk.ConfigurationItem, 4)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(sctx, &sdk.ConfigurationSubscribeRequest{Keys: []string{"k"}}, func() { close(ready) },
			func(_ context.Context, items map[string]sdk.ConfigurationItem) error { got <- items["k"]; return nil })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Subscribe ended: %v", err)
	case <-ctx.Done():
		t.Fatal("Subscribe never became ready")
	}
	if _, err := pool.Exec(ctx, `DELETE FROM `+tbl+` WHERE key = 'k'`); err != nil {
		t.Fatal(err)
	}
	select {
	case it := <-got:
		if it.Value != "" || it.Version != "" {
			t.Fatalf("deleted key reported as %+v", it)
		}
	case <-ctx.Done():
		t.Fatal("no notification for the delete")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Subscribe after cancel: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		md      sdk.Metadata
		wantErr string
	}{
		{"minimal", sdk.Metadata{"connectionString": connString}, ""},
		{"all", sdk.Metadata{"connectionString": "postgres://u:p@localhost:5432/db", "table": "cfg", "timeout": "5s"}, ""},
		{"no connection string", sdk.Metadata{}, "connectionString"},
		{"bad connection string", sdk.Metadata{"connectionString": "postgres://%zz"}, "connectionString"},
		{"bad table", sdk.Metadata{"connectionString": connString, "table": "cfg; drop"}, "table"},
		{"bad timeout", sdk.Metadata{"connectionString": connString, "timeout": "never"}, "timeout"},
		{"zero timeout", sdk.Metadata{"connectionString": connString, "timeout": "0"}, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.md)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("want an error naming %s, got %v", tc.wantErr, err)
			}
		})
	}
}
