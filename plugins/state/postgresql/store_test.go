package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const (
	connString    = "host=127.0.0.1 user=postgres dbname=test sslmode=disable"
	startPostgres = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// needPostgres returns a pool to the local server and fresh table names
// (state, metadata) that are dropped when the test ends. It fails the test
// with how to start the server when it is not there.
func needPostgres(t *testing.T) (*pgxpool.Pool, string, string) {
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
	table := "outrigger_test_" + hex.EncodeToString(b)
	meta := table + "_meta"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, tb := range []string{table, meta} {
			if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS "+tb); err != nil {
				t.Errorf("dropping %s: %v", tb, err)
			}
		}
		pool.Close()
	})
	return pool, table, meta
}

func metadataFor(table, meta string) sdk.Metadata {
	return sdk.Metadata{"connectionString": connString, "tableName": table, "metadataTableName": meta}
}

func TestConformance(t *testing.T) {
	_, table, meta := needPostgres(t)
	sdktest.ExerciseStateStore(t, func() sdk.StateStore { return New(discard) }, metadataFor(table, meta))
}

// newStore returns an initialised store on a fresh table, its pool for
// looking behind its back, and the table name.
func newStore(t *testing.T, extra sdk.Metadata) (*Store, *pgxpool.Pool, string) {
	t.Helper()
	pool, table, meta := needPostgres(t)
	md := metadataFor(table, meta)
	for k, v := range extra {
		md[k] = v
	}
	s := New(discard)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Init(ctx, md); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, pool, table
}

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		md      sdk.Metadata
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "missing connection string", md: sdk.Metadata{}, wantErr: "connectionString is required"},
		{name: "defaults", md: sdk.Metadata{"connectionString": "host=x"}, check: func(t *testing.T, c config) {
			if c.table != `"state"` || c.metadataTable != `"dapr_metadata"` || c.timeout != 20*time.Second ||
				c.cleanupInterval != time.Hour || c.maxConns != 0 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "schema and names", md: sdk.Metadata{"connectionString": "host=x", "schema": "App", "tableName": "Order",
			"metadataTableName": "other.meta", "timeout": "5", "cleanupInterval": "-1", "maxConns": "7", "connectionMaxIdleTime": "90s"},
			check: func(t *testing.T, c config) {
				if c.table != `"app"."order"` || c.metadataTable != `"other"."meta"` || c.timeout != 5*time.Second ||
					c.cleanupInterval != -time.Second || c.maxConns != 7 || c.maxConnIdleTime != 90*time.Second {
					t.Errorf("parsed: %+v", c)
				}
			}},
		{name: "older cleanup spelling", md: sdk.Metadata{"connectionString": "host=x", "cleanupIntervalInSeconds": "30"},
			check: func(t *testing.T, c config) {
				if c.cleanupInterval != 30*time.Second {
					t.Errorf("cleanupInterval = %v", c.cleanupInterval)
				}
			}},
		{name: "injection in table name", md: sdk.Metadata{"connectionString": "host=x", "tableName": "state; DROP TABLE x"}, wantErr: "tableName"},
		{name: "three-part name", md: sdk.Metadata{"connectionString": "host=x", "tableName": "a.b.c"}, wantErr: "tableName"},
		{name: "bad schema", md: sdk.Metadata{"connectionString": "host=x", "schema": "a-b"}, wantErr: "schema"},
		{name: "bad timeout", md: sdk.Metadata{"connectionString": "host=x", "timeout": "soon"}, wantErr: "timeout"},
		{name: "zero timeout", md: sdk.Metadata{"connectionString": "host=x", "timeout": "0"}, wantErr: "timeout"},
		{name: "bad maxConns", md: sdk.Metadata{"connectionString": "host=x", "maxConns": "0"}, wantErr: "maxConns"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(tc.md)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestInitUnreachable(t *testing.T) {
	s := New(discard)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.Init(ctx, sdk.Metadata{"connectionString": "host=127.0.0.1 port=1 user=postgres dbname=test sslmode=disable connect_timeout=2"})
	if err == nil {
		t.Fatal("Init against a closed port succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after failed Init: %v", err)
	}
}

// A table of another layout (Dapr v1's jsonb value) is refused with a clear
// error instead of failing on every write.
func TestInitForeignTable(t *testing.T) {
	pool, table, meta := needPostgres(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE TABLE "+table+" (key text PRIMARY KEY, value jsonb NOT NULL, isbinary boolean NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	s := New(discard)
	defer s.Close()
	err := s.Init(ctx, metadataFor(table, meta))
	if err == nil || !strings.Contains(err.Error(), "jsonb value column") {
		t.Fatalf("Init on a jsonb table: %v, want an error naming the layout", err)
	}
}

// Several instances initialising the same new table at once must all
// succeed (the advisory lock serialises CREATE TABLE).
func TestInitConcurrent(t *testing.T) {
	_, table, meta := needPostgres(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s := New(discard)
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errs <- s.Init(ctx, metadataFor(table, meta))
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Init: %v", err)
		}
	}
}

func TestExpiry(t *testing.T) {
	s, pool, table := newStore(t, sdk.Metadata{"cleanupInterval": "1h"})
	ctx := context.Background()
	if err := s.Set(ctx, &sdk.SetRequest{Key: "gone", Value: []byte("x"), Metadata: map[string]string{"ttlInSeconds": "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, &sdk.SetRequest{Key: "kept", Value: []byte("y"), Metadata: map[string]string{"ttlInSeconds": "3600"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Get(ctx, &sdk.GetRequest{Key: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, resp.Metadata[ttlExpireTimeKey])
	if err != nil || time.Until(exp) < 3500*time.Second {
		t.Errorf("ttlExpireTime = %q (%v)", resp.Metadata[ttlExpireTimeKey], err)
	}
	// Wait on the database clock until the row is past its expiry.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var expired bool
		if err := pool.QueryRow(ctx, "SELECT expiredate <= now() FROM "+table+" WHERE key = 'gone'").Scan(&expired); err != nil {
			t.Fatal(err)
		}
		if expired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("row did not expire within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Expired but not yet swept: invisible to every read and to etag writes.
	resp, err = s.Get(ctx, &sdk.GetRequest{Key: "gone"})
	if err != nil || resp.Found {
		t.Fatalf("Get of an expired row = %+v, %v", resp, err)
	}
	items, err := s.BulkGet(ctx, []*sdk.GetRequest{{Key: "gone"}, {Key: "kept"}})
	if err != nil || items[0].Found || !items[1].Found {
		t.Fatalf("BulkGet = %+v, %v", items, err)
	}
	// First-write may take over an expired key.
	if err := s.Set(ctx, &sdk.SetRequest{Key: "gone", Value: []byte("back"), Concurrency: sdk.FirstWrite,
		Metadata: map[string]string{"ttlInSeconds": "1"}}); err != nil {
		t.Fatalf("first-write over an expired row: %v", err)
	}
	if _, err := pool.Exec(ctx, "UPDATE "+table+" SET expiredate = now() - interval '1 minute' WHERE key = 'gone'"); err != nil {
		t.Fatal(err)
	}

	n, err := s.cleanup(ctx)
	if err != nil || n != 1 {
		t.Fatalf("cleanup = %d rows, %v; want 1", n, err)
	}
	var count int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&count); err != nil || count != 1 {
		t.Fatalf("rows left = %d (%v), want 1", count, err)
	}
	// Claimed a moment ago: the next sweep is not due for an hour.
	if _, err := pool.Exec(ctx, "UPDATE "+table+" SET expiredate = now() - interval '1 minute'"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.cleanup(ctx); err != nil || n != 0 {
		t.Fatalf("second cleanup within the interval = %d rows, %v; want 0", n, err)
	}
}

func TestCleanupLoopRuns(t *testing.T) {
	s, pool, table := newStore(t, sdk.Metadata{"cleanupInterval": "100ms"})
	ctx := context.Background()
	if err := s.Set(ctx, &sdk.SetRequest{Key: "k", Value: []byte("x"), Metadata: map[string]string{"ttlInSeconds": "1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE "+table+" SET expiredate = now() - interval '1 minute'"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var count int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&count); err != nil {
			t.Fatal(err)
		}
		if count == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cleanup loop did not delete the expired row within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestValues(t *testing.T) {
	s, pool, table := newStore(t, nil)
	ctx := context.Background()
	cases := []struct {
		name      string
		value     []byte
		queryable bool
	}{
		{"compact json", []byte(`{"b":1,"a":[1,2]}`), true},
		{"spaced json keeps its bytes", []byte("{ \"z\" : 1.50 ,\n \"a\": \"x\" }"), true},
		{"json string", []byte(`"hello"`), true},
		{"json with NUL escape", []byte(`{"a":"x\u0000y"}`), false},
		{"json with lone surrogate", []byte(`"\ud800"`), false},
		{"json with escaped backslash before u", []byte(`"\\u0000"`), true},
		{"invalid utf-8", []byte{'"', 0xff, '"'}, false},
		{"empty", nil, false},
		{"text", []byte("plain"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Set(ctx, &sdk.SetRequest{Key: tc.name, Value: tc.value}); err != nil {
				t.Fatalf("Set: %v", err)
			}
			resp, err := s.Get(ctx, &sdk.GetRequest{Key: tc.name})
			if err != nil || !resp.Found || string(resp.Data) != string(tc.value) {
				t.Fatalf("Get = %+v, %v; want %q", resp, err, tc.value)
			}
			var isBinary bool
			if err := pool.QueryRow(ctx, "SELECT isbinary FROM "+table+" WHERE key = $1", tc.name).Scan(&isBinary); err != nil {
				t.Fatal(err)
			}
			if isBinary == tc.queryable {
				t.Fatalf("isbinary = %v, want %v", isBinary, !tc.queryable)
			}
		})
	}
	// A query over all of them must not trip over the non-JSON rows.
	resp, err := s.Query(ctx, &sdk.Query{Filter: map[string]json.RawMessage{"EQ": json.RawMessage(`{"a":"x"}`)}})
	if err != nil {
		t.Fatalf("Query over mixed rows: %v", err)
	}
	if len(resp.Items) != 1 || resp.Items[0].Key != "spaced json keeps its bytes" {
		t.Fatalf("Query = %+v", resp.Items)
	}
}

func TestQueryTypesAndTokens(t *testing.T) {
	s, _, _ := newStore(t, nil)
	ctx := context.Background()
	docs := map[string]string{
		"n1":   `{"v":1}`,
		"n1.0": `{"v":1.0}`,
		"s1":   `{"v":"1"}`,
		"t":    `{"v":true}`,
		"obj":  `{"v":{"w":[1,2]}}`,
	}
	for k, v := range docs {
		if err := s.Set(ctx, &sdk.SetRequest{Key: k, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		filter string
		want   []string
	}{
		{`{"EQ":{"v":1}}`, []string{"n1", "n1.0"}},
		{`{"EQ":{"v":"1"}}`, []string{"s1"}},
		{`{"EQ":{"v":true}}`, []string{"t"}},
		{`{"EQ":{"v.w":[1,2]}}`, []string{"obj"}},
		{`{"IN":{"v":[1,"1"]}}`, []string{"n1", "n1.0", "s1"}},
		{`{"EQ":{"missing.path":1}}`, nil},
		{`{"AND":[{"EQ":{"v":1}},{"EQ":{"v":"1"}}]}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.filter, func(t *testing.T) {
			var f map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.filter), &f); err != nil {
				t.Fatal(err)
			}
			resp, err := s.Query(ctx, &sdk.Query{Filter: f})
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			var got []string
			for _, it := range resp.Items {
				got = append(got, it.Key)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	// A page that ends exactly at the last row carries no token.
	resp, err := s.Query(ctx, &sdk.Query{Page: sdk.Pagination{Limit: 5}})
	if err != nil || len(resp.Items) != 5 || resp.Token != "" {
		t.Fatalf("full page = %d items, token %q, %v; want 5 and no token", len(resp.Items), resp.Token, err)
	}
	for _, bad := range []sdk.Query{
		{Page: sdk.Pagination{Token: "abc"}},
		{Page: sdk.Pagination{Token: "-1"}},
		{Sort: []sdk.Sorting{{Key: "v", Order: "SIDEWAYS"}}},
		{Sort: []sdk.Sorting{{Key: ""}}},
		{Filter: map[string]json.RawMessage{"EQ": json.RawMessage(`{"a":1,"b":2}`)}},
	} {
		if _, err := s.Query(ctx, &bad); err == nil {
			t.Errorf("Query %+v succeeded, want an error", bad)
		}
	}
}

func TestBadRequests(t *testing.T) {
	s, _, _ := newStore(t, nil)
	ctx := context.Background()
	if err := s.Set(ctx, &sdk.SetRequest{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"empty key set", func() error { return s.Set(ctx, &sdk.SetRequest{}) }, nil},
		{"empty key get", func() error { _, err := s.Get(ctx, &sdk.GetRequest{}); return err }, nil},
		{"etag not a uuid", func() error { return s.Delete(ctx, &sdk.DeleteRequest{Key: "k", ETag: ptr("17")}) }, sdk.ErrETagInvalid},
		{"bad ttl", func() error {
			return s.Set(ctx, &sdk.SetRequest{Key: "k", Metadata: map[string]string{"ttlInSeconds": "-2"}})
		}, nil},
		{"empty tx op", func() error { return s.Transact(ctx, []sdk.TxOp{{}}, nil) }, nil},
		{"stale etag in bulk delete rolls back", func() error {
			return s.BulkDelete(ctx, []*sdk.DeleteRequest{{Key: "k"}, {Key: "k2", ETag: ptr("00000000-0000-0000-0000-000000000000")}})
		}, sdk.ErrETagMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("succeeded, want an error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	if resp, err := s.Get(ctx, &sdk.GetRequest{Key: "k"}); err != nil || !resp.Found {
		t.Fatalf("k after a rolled-back bulk delete: %+v, %v", resp, err)
	}
}

func ptr(s string) *string { return &s }
