package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const (
	redisAddr  = "127.0.0.1:6379"
	startRedis = `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no`
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// needRedis returns a client to the local server, failing the test with how
// to start it when it is not there.
func needRedis(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr, DialTimeout: 2 * time.Second, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("Redis is not reachable at %s (%v); start it with:\n\t%s", redisAddr, err, startRedis)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func randomID(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// recordingStore is the real Store that also remembers every key written,
// so the test can delete what the conformance kit leaves behind.
type recordingStore struct {
	*Store
	keys *keySet
}

type keySet struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (k *keySet) add(key string) {
	k.mu.Lock()
	k.keys[key] = true
	k.mu.Unlock()
}

func (k *keySet) list() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]string, 0, len(k.keys))
	for key := range k.keys {
		out = append(out, key)
	}
	return out
}

func (r recordingStore) Set(ctx context.Context, req *sdk.SetRequest) error {
	r.keys.add(req.Key)
	return r.Store.Set(ctx, req)
}

func (r recordingStore) BulkSet(ctx context.Context, reqs []*sdk.SetRequest) error {
	for _, req := range reqs {
		r.keys.add(req.Key)
	}
	return r.Store.BulkSet(ctx, reqs)
}

func (r recordingStore) Transact(ctx context.Context, ops []sdk.TxOp, md map[string]string) error {
	for _, op := range ops {
		if op.Set != nil {
			r.keys.add(op.Set.Key)
		}
	}
	return r.Store.Transact(ctx, ops, md)
}

func TestConformance(t *testing.T) {
	client := needRedis(t)
	keys := &keySet{keys: map[string]bool{}}
	t.Cleanup(func() {
		if k := keys.list(); len(k) > 0 {
			if err := client.Del(context.Background(), k...).Err(); err != nil {
				t.Errorf("cleaning up %d keys: %v", len(k), err)
			}
		}
	})
	sdktest.ExerciseStateStore(t, func() sdk.StateStore {
		return recordingStore{Store: New(discard), keys: keys}
	}, sdk.Metadata{"redisHost": redisAddr})
}

// newStore returns an initialised store and a key prefix unique to the test;
// keys under the prefix are deleted at the end.
func newStore(t *testing.T, md sdk.Metadata) (*Store, string, *redis.Client) {
	t.Helper()
	client := needRedis(t)
	prefix := "outrigger-test-" + randomID(t) + "-"
	if md == nil {
		md = sdk.Metadata{}
	}
	md["redisHost"] = redisAddr
	s := New(discard)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Init(ctx, md); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = client.Del(ctx, keys...).Err()
		}
		_ = s.Close()
	})
	return s, prefix, client
}

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		md      sdk.Metadata
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "missing host", md: sdk.Metadata{}, wantErr: "redisHost is required"},
		{name: "defaults", md: sdk.Metadata{"redisHost": "h:1"}, check: func(t *testing.T, c config) {
			if c.MaxRetries != 3 || c.DialTimeout != 5*time.Second || c.defaultTTL != 0 || c.TLS != nil || c.DB != 0 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "all set", md: sdk.Metadata{
			"redisHost": "a:1, b:2", "redisDB": "3", "enableTLS": "true", "maxRetries": "7",
			"dialTimeout": "250", "readTimeout": "-1", "writeTimeout": "2s", "poolSize": "4",
			"ttlInSeconds": "60", "redisType": "cluster",
		}, check: func(t *testing.T, c config) {
			if len(c.Addrs) != 2 || c.Addrs[1] != "b:2" || c.DB != 3 || c.TLS == nil || c.MaxRetries != 7 ||
				c.DialTimeout != 250*time.Millisecond || c.ReadTimeout != -1 || c.WriteTimeout != 2*time.Second ||
				c.PoolSize != 4 || c.defaultTTL != time.Minute || !c.Cluster {
				t.Errorf("parsed: %+v", c)
			}
		}},
		{name: "bad db", md: sdk.Metadata{"redisHost": "h:1", "redisDB": "x"}, wantErr: "redisDB"},
		{name: "bad bool", md: sdk.Metadata{"redisHost": "h:1", "enableTLS": "yes please"}, wantErr: "enableTLS"},
		{name: "bad duration", md: sdk.Metadata{"redisHost": "h:1", "dialTimeout": "soon"}, wantErr: "dialTimeout"},
		{name: "bad ttl", md: sdk.Metadata{"redisHost": "h:1", "ttlInSeconds": "-5"}, wantErr: "ttlInSeconds"},
		{name: "bad type", md: sdk.Metadata{"redisHost": "h:1", "redisType": "mesh"}, wantErr: "redisType"},
		{name: "failover without master", md: sdk.Metadata{"redisHost": "h:1", "failover": "true"}, wantErr: "sentinelMasterName"},
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := s.Init(ctx, sdk.Metadata{"redisHost": "127.0.0.1:1", "maxRetries": "0", "dialTimeout": "500ms"})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Init against a closed port: %v, want an error naming the address", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Init took %s to fail", d)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after failed Init: %v", err)
	}
}

func TestDefaultTTL(t *testing.T) {
	s, p, client := newStore(t, sdk.Metadata{"ttlInSeconds": "100"})
	ctx := context.Background()
	cases := []struct {
		key     string
		md      map[string]string
		wantTTL func(time.Duration) bool
	}{
		{key: p + "default", md: nil, wantTTL: func(d time.Duration) bool { return d > 90*time.Second && d <= 100*time.Second }},
		{key: p + "override", md: map[string]string{"ttlInSeconds": "1000"}, wantTTL: func(d time.Duration) bool { return d > 900*time.Second }},
		{key: p + "never", md: map[string]string{"ttlInSeconds": "-1"}, wantTTL: func(d time.Duration) bool { return d == -1 }},
	}
	for _, tc := range cases {
		if err := s.Set(ctx, &sdk.SetRequest{Key: tc.key, Value: []byte("v"), Metadata: tc.md}); err != nil {
			t.Fatalf("Set %s: %v", tc.key, err)
		}
		d, err := client.PTTL(ctx, tc.key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !tc.wantTTL(d) {
			t.Errorf("%s: PTTL = %v", tc.key, d)
		}
	}
	resp, err := s.Get(ctx, &sdk.GetRequest{Key: p + "default"})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, resp.Metadata[ttlExpireTimeKey])
	if err != nil || time.Until(exp) < 90*time.Second || time.Until(exp) > 101*time.Second {
		t.Errorf("ttlExpireTime = %q (%v)", resp.Metadata[ttlExpireTimeKey], err)
	}
	resp, err = s.Get(ctx, &sdk.GetRequest{Key: p + "never"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Metadata[ttlExpireTimeKey]; ok {
		t.Errorf("key without expiry reports ttlExpireTime %q", resp.Metadata[ttlExpireTimeKey])
	}
}

// The server's script cache can be flushed (SCRIPT FLUSH, failover to a
// replica): pipelined EVALSHA then fails with NOSCRIPT and must recover.
func TestBulkSetAfterScriptFlush(t *testing.T) {
	s, p, client := newStore(t, nil)
	ctx := context.Background()
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	reqs := []*sdk.SetRequest{{Key: p + "a", Value: []byte("A")}, {Key: p + "b", Value: []byte("B")}}
	if err := s.BulkSet(ctx, reqs); err != nil {
		t.Fatalf("BulkSet after SCRIPT FLUSH: %v", err)
	}
	items, err := s.BulkGet(ctx, []*sdk.GetRequest{{Key: p + "a"}, {Key: p + "b"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"A", "B"} {
		if !items[i].Found || string(items[i].Data) != want || items[i].ETag != "1" {
			t.Errorf("item %d = %+v, want %s with etag 1", i, items[i], want)
		}
	}
}

// A key that is not a hash (written by something else) gives an error, not
// a panic or a wrong answer; in a bulk get it is a per-item error.
func TestForeignKeyType(t *testing.T) {
	s, p, client := newStore(t, nil)
	ctx := context.Background()
	if err := client.Set(ctx, p+"plain", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, &sdk.GetRequest{Key: p + "plain"}); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("Get of a string key: %v, want WRONGTYPE error", err)
	}
	if err := s.Set(ctx, &sdk.SetRequest{Key: p + "plain", Value: []byte("v")}); err == nil {
		t.Errorf("Set over a string key succeeded")
	}
	if err := s.Set(ctx, &sdk.SetRequest{Key: p + "ok", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	items, err := s.BulkGet(ctx, []*sdk.GetRequest{{Key: p + "plain"}, {Key: p + "ok"}})
	if err != nil {
		t.Fatalf("BulkGet: %v", err)
	}
	if items[0].Error == "" || !items[1].Found {
		t.Errorf("BulkGet = %+v", items)
	}
}

func TestBadRequests(t *testing.T) {
	s, p, _ := newStore(t, nil)
	ctx := context.Background()
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"empty key set", func() error { return s.Set(ctx, &sdk.SetRequest{}) }, nil},
		{"empty key get", func() error { _, err := s.Get(ctx, &sdk.GetRequest{}); return err }, nil},
		{"zero etag", func() error { return s.Set(ctx, &sdk.SetRequest{Key: p + "k", ETag: ptr("0")}) }, sdk.ErrETagInvalid},
		{"negative etag", func() error { return s.Delete(ctx, &sdk.DeleteRequest{Key: p + "k", ETag: ptr("-3")}) }, sdk.ErrETagInvalid},
		{"empty tx op", func() error { return s.Transact(ctx, []sdk.TxOp{{}}, nil) }, nil},
		{"bad ttl in tx", func() error {
			return s.Transact(ctx, []sdk.TxOp{{Set: &sdk.SetRequest{Key: p + "k", Metadata: map[string]string{"ttlInSeconds": "x"}}}}, nil)
		}, nil},
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
}

func ptr(s string) *string { return &s }
