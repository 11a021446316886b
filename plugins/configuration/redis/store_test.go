package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const (
	redisAddr  = "127.0.0.1:6379"
	redisDB    = 4
	startRedis = `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no`
)

func needRedis(t *testing.T) *redis.Client {
	t.Helper()
	c, err := net.DialTimeout("tcp", redisAddr, 2*time.Second)
	if err != nil {
		t.Fatalf("Redis is not reachable at %s (%v); start it with:\n\t%s", redisAddr, err, startRedis)
	}
	_ = c.Close()
	rc := redis.NewClient(&redis.Options{Addr: redisAddr, DB: redisDB})
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

func TestConformance(t *testing.T) {
	rc := needRedis(t)
	set := func(ctx context.Context, key, value, version string) error {
		return rc.Set(ctx, key, value+"||"+version, 0).Err()
	}
	sdktest.ExerciseConfigurationStore(t, func() sdk.ConfigurationStore { return New(nil) },
		sdk.Metadata{"redisHost": redisAddr, "redisDB": "4"}, set)
}

func TestInitEnablesKeyspaceEvents(t *testing.T) {
	rc := needRedis(t)
	ctx := context.Background()
	old, err := rc.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.ConfigSet(ctx, "notify-keyspace-events", old["notify-keyspace-events"]).Err() })
	if err := rc.ConfigSet(ctx, "notify-keyspace-events", "").Err(); err != nil {
		t.Fatal(err)
	}
	s := New(nil)
	if err := s.Init(ctx, sdk.Metadata{"redisHost": redisAddr, "redisDB": "4"}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := rc.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		t.Fatal(err)
	}
	if f := got["notify-keyspace-events"]; !strings.Contains(f, "K") || !strings.Contains(f, "A") && !strings.Contains(f, "g") {
		t.Fatalf("notify-keyspace-events = %q after Init; want keyspace events for all commands", f)
	}
}

func TestDeleteIsReportedEmpty(t *testing.T) {
	rc := needRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := New(nil)
	if err := s.Init(ctx, sdk.Metadata{"redisHost": redisAddr, "redisDB": "4"}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := "conf-del-" + time.Now().Format("150405.000000")
	if err := rc.Set(ctx, key, "x||1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	ready := make(chan struct{})
	got := make(chan sdk.ConfigurationItem, 4)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(sctx, &sdk.ConfigurationSubscribeRequest{Keys: []string{key}}, func() { close(ready) },
			func(_ context.Context, items map[string]sdk.ConfigurationItem) error { got <- items[key]; return nil })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Subscribe ended: %v", err)
	case <-ctx.Done():
		t.Fatal("Subscribe never became ready")
	}
	if err := rc.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case it := <-got:
		if it.Value != "" || it.Version != "" {
			t.Fatalf("deleted key reported as %+v", it)
		}
	case <-ctx.Done():
		t.Fatal("no event for the delete")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Subscribe after cancel: %v", err)
	}
}

func TestParseItem(t *testing.T) {
	for raw, want := range map[string][2]string{"v||1": {"v", "1"}, "plain": {"plain", ""}, "a||b||c": {"a", "b||c"}, "": {"", ""}} {
		it := parseItem(raw)
		if it.Value != want[0] || it.Version != want[1] {
			t.Errorf("parseItem(%q) = %q, %q; want %q, %q", raw, it.Value, it.Version, want[0], want[1])
		}
	}
}
