package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func newInitialised(t *testing.T, md sdk.Metadata) *Store {
	t.Helper()
	s := New().(*Store)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Init(ctx, md); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		md      sdk.Metadata
		wantErr string
	}{
		{"no connection string", sdk.Metadata{}, "connectionString"},
		{"bad table name", sdk.Metadata{"connectionString": ":memory:", "tableName": "state; DROP TABLE x"}, "table name"},
		{"same tables", sdk.Metadata{"connectionString": ":memory:", "tableName": "t", "metadataTableName": "t"}, "both"},
		{"bad timeout", sdk.Metadata{"connectionString": ":memory:", "timeout": "soon"}, "timeout"},
		{"zero timeout", sdk.Metadata{"connectionString": ":memory:", "timeout": "0"}, "positive"},
		{"bad busy timeout", sdk.Metadata{"connectionString": ":memory:", "busyTimeout": "-1s"}, "busyTimeout"},
		{"bad cleanup", sdk.Metadata{"connectionString": ":memory:", "cleanupInterval": "often"}, "cleanupInterval"},
		{"bad disableWAL", sdk.Metadata{"connectionString": ":memory:", "disableWAL": "maybe"}, "disableWAL"},
		{"unopenable path", sdk.Metadata{"connectionString": "/nonexistent-dir/x/state.db"}, "nonexistent-dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			err := s.Init(context.Background(), tc.md)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Init error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigDefaultsAndForms(t *testing.T) {
	c, err := parseConfig(sdk.Metadata{"ConnectionString": "x.db", "timeout": "5", "cleanupInterval": "10m"})
	if err != nil {
		t.Fatal(err)
	}
	if c.tableName != "state" || c.metadataTableName != "metadata" || c.timeout != 5*time.Second ||
		c.cleanupInterval != 10*time.Minute || c.busyTimeout != 2*time.Second {
		t.Fatalf("config %+v", c)
	}
	if got := c.dsn(); !strings.Contains(got, "_txlock=immediate") || !strings.Contains(got, "journal_mode(WAL)") || !strings.Contains(got, "_busy_timeout=2000") {
		t.Fatalf("dsn %q lacks immediate transactions, WAL or busy timeout", got)
	}
	c.connectionString = "file:x.db?cache=private"
	if got := c.dsn(); !strings.HasPrefix(got, "file:x.db?cache=private&_txlock") {
		t.Fatalf("dsn for a file: URI with parameters = %q", got)
	}
}

// TestExpiredNeverReturned: an expired row stays in the table until cleanup
// but no read path returns it.
func TestExpiredNeverReturned(t *testing.T) {
	s := newInitialised(t, sdk.Metadata{"connectionString": ":memory:", "cleanupInterval": "0"})
	ctx := context.Background()
	if err := s.Set(ctx, &sdk.SetRequest{Key: "k", Value: []byte(`{"a":1}`), Metadata: map[string]string{"ttlInSeconds": "100"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Get(ctx, &sdk.GetRequest{Key: "k"})
	if err != nil || !resp.Found || resp.Metadata["ttlExpireTime"] == "" {
		t.Fatalf("Get before expiry: %+v %v (want ttlExpireTime metadata)", resp, err)
	}
	// Move the expiry into the past directly, as if time had passed.
	if _, err := s.db.Exec(`UPDATE state SET expires_at = ? WHERE key = 'k'`, time.Now().Add(-time.Second).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if resp, err := s.Get(ctx, &sdk.GetRequest{Key: "k"}); err != nil || resp.Found {
		t.Fatalf("Get of expired row: %+v %v", resp, err)
	}
	items, err := s.BulkGet(ctx, []*sdk.GetRequest{{Key: "k"}})
	if err != nil || items[0].Found {
		t.Fatalf("BulkGet of expired row: %+v %v", items, err)
	}
	q, err := s.Query(ctx, &sdk.Query{})
	if err != nil || len(q.Items) != 0 {
		t.Fatalf("Query returned expired row: %+v %v", q, err)
	}
	etag := "whatever"
	if err := s.Set(ctx, &sdk.SetRequest{Key: "k", Value: []byte("x"), ETag: &etag}); !errors.Is(err, sdk.ErrETagMismatch) {
		t.Fatalf("Set with etag on expired row: %v, want ErrETagMismatch", err)
	}
	if err := s.Set(ctx, &sdk.SetRequest{Key: "k", Value: []byte("new"), Concurrency: sdk.FirstWrite}); err != nil {
		t.Fatalf("first-write over an expired row: %v", err)
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM state`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d %v", n, err)
	}
}

func TestCleanupSweep(t *testing.T) {
	s := newInitialised(t, sdk.Metadata{"connectionString": ":memory:", "cleanupInterval": "50ms"})
	ctx := context.Background()
	if err := s.Set(ctx, &sdk.SetRequest{Key: "gone", Value: []byte("x"), Metadata: map[string]string{"ttlInSeconds": "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, &sdk.SetRequest{Key: "kept", Value: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := s.db.QueryRow(`SELECT count(*) FROM state`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired row not swept after 5 s (%d rows)", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var last string
	if err := s.db.QueryRow(`SELECT value FROM metadata WHERE key = 'last-cleanup'`).Scan(&last); err != nil {
		t.Fatalf("last-cleanup not recorded: %v", err)
	}
}

// TestSharedFile: two stores (separate connection pools, as two plugin
// processes would have) increment one counter with etags; no update is lost
// and no writer fails with "database is locked".
func TestSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	md := sdk.Metadata{"connectionString": path}
	stores := []*Store{newInitialised(t, md), newInitialised(t, md)}
	ctx := context.Background()
	if err := stores[0].Set(ctx, &sdk.SetRequest{Key: "n", Value: []byte("0")}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		s := stores[w%2]
		wg.Go(func() {
			for range each {
				if err := increment(ctx, s, "n"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	resp, err := stores[1].Get(ctx, &sdk.GetRequest{Key: "n"})
	if err != nil || string(resp.Data) != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %q (%v), want %d", resp.Data, err, workers*each)
	}
	var mode string
	if err := stores[0].db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q %v, want wal", mode, err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no WAL file next to the database: %v", err)
	}
}

func increment(ctx context.Context, s *Store, key string) error {
	for attempt := 0; attempt < 1000; attempt++ {
		resp, err := s.Get(ctx, &sdk.GetRequest{Key: key})
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(resp.Data))
		if err != nil {
			return err
		}
		err = s.Set(ctx, &sdk.SetRequest{Key: key, Value: []byte(strconv.Itoa(n + 1)), ETag: &resp.ETag})
		if err == nil {
			return nil
		}
		if !errors.Is(err, sdk.ErrETagMismatch) {
			return fmt.Errorf("set: %w", err)
		}
	}
	return errors.New("too many conflicts")
}

func TestQueryErrors(t *testing.T) {
	s := newInitialised(t, sdk.Metadata{"connectionString": ":memory:"})
	tests := []struct {
		name string
		q    sdk.Query
		want string
	}{
		{"bad token", sdk.Query{Page: sdk.Pagination{Limit: 1, Token: "abc"}}, "token"},
		{"negative limit", sdk.Query{Page: sdk.Pagination{Limit: -1}}, "limit"},
		{"bad order", sdk.Query{Sort: []sdk.Sorting{{Key: "a", Order: "SIDEWAYS"}}}, "order"},
		{"quote in key", sdk.Query{Sort: []sdk.Sorting{{Key: `a"b`}}}, "quote"},
		{"object value", sdk.Query{Filter: map[string]json.RawMessage{"EQ": json.RawMessage(`{"a":{"b":1}}`)}}, "not supported"},
		{"null in IN", sdk.Query{Filter: map[string]json.RawMessage{"IN": json.RawMessage(`{"a":[null]}`)}}, "only supported in EQ"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Query(context.Background(), &tc.q)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Query error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
