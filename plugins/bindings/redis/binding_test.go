package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const (
	redisAddr  = "127.0.0.1:6379"
	startRedis = `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no`
)

func needRedis(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", redisAddr, 2*time.Second)
	if err != nil {
		t.Fatalf("Redis is not reachable at %s (%v); start it with:\n\t%s", redisAddr, err, startRedis)
	}
	_ = c.Close()
}

func TestConformance(t *testing.T) {
	needRedis(t)
	key := "bindings-conformance-" + time.Now().Format("150405.000000")
	md := func(kv ...string) map[string]string {
		m := map[string]string{"key": key}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return New() }, sdktest.OutputBindingCase{
		Metadata:    sdk.Metadata{"redisHost": redisAddr, "redisDB": "4"},
		BadMetadata: sdk.Metadata{"redisHost": "127.0.0.1:1"},
		Operations:  []string{"create", "get", "delete", "increment"},
		Calls: []sdktest.OutputCall{
			{Name: "create", Operation: "create", Data: []byte(`{"a":1}`), Metadata: md()},
			{Name: "get", Operation: "get", Metadata: md(), WantData: []byte(`{"a":1}`)},
			{Name: "delete", Operation: "delete", Metadata: md()},
			{Name: "get missing", Operation: "get", Metadata: md(), WantData: []byte{}},
			{Name: "increment", Operation: "increment", Metadata: md()},
			{Name: "increment again", Operation: "increment", Metadata: md()},
			{Name: "get counter", Operation: "get", Metadata: md(), WantData: []byte("2")},
			{Name: "create with ttl", Operation: "create", Data: []byte("t"), Metadata: md("ttlInSeconds", "100")},
			{Name: "no key", Operation: "get", WantCode: codes.InvalidArgument},
			{Name: "bad ttl", Operation: "create", Metadata: md("ttlInSeconds", "soon"), WantCode: codes.InvalidArgument},
		},
	})
	c := redis.NewClient(&redis.Options{Addr: redisAddr, DB: 4})
	defer c.Close()
	if d := c.TTL(context.Background(), key).Val(); d <= 0 || d > 100*time.Second {
		t.Fatalf("TTL of %s = %v, want ≤ 100s", key, d)
	}
	c.Del(context.Background(), key)
}
