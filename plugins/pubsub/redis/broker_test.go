package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const redisAddr = "127.0.0.1:6379"

func needRedis(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", redisAddr, 2*time.Second)
	if err != nil {
		t.Fatalf("Redis is not reachable at %s (%v): start it with `redis-server --port 6379 --daemonize yes`", redisAddr, err)
	}
	_ = c.Close()
}

func TestConformance(t *testing.T) {
	needRedis(t)
	md := sdk.Metadata{
		"redisHost":         redisAddr,
		"processingTimeout": "1s",
		"redeliverInterval": "200ms",
		"maxLenApprox":      "10000",
	}
	t.Cleanup(func() { deleteKitStreams(t) })
	sdktest.ExercisePubSub(t, New, md, sdktest.RedeliveryWithin(5*time.Second), sdktest.ReadyWithin(5*time.Second))
}

// deleteKitStreams removes the streams the conformance kit created (topics
// named ct<12 hex digits>-<case>).
func deleteKitStreams(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer c.Close()
	ctx := context.Background()
	iter := c.ScanType(ctx, 0, "ct????????????-*", 100, "stream").Iterator()
	for iter.Next(ctx) {
		_ = c.Del(ctx, iter.Val()).Err()
	}
	if err := iter.Err(); err != nil {
		t.Logf("cleaning up the kit's streams: %v", err)
	}
}

func TestInitErrors(t *testing.T) {
	cases := map[string]sdk.Metadata{
		"no host":            {"consumerID": "g"},
		"no consumerID":      {"redisHost": redisAddr},
		"bad type":           {"redisHost": redisAddr, "consumerID": "g", "redisType": "ring"},
		"bad duration":       {"redisHost": redisAddr, "consumerID": "g", "processingTimeout": "soon"},
		"zero concurrency":   {"redisHost": redisAddr, "consumerID": "g", "concurrency": "0"},
		"failover no master": {"redisHost": redisAddr, "consumerID": "g", "failover": "true"},
		"unreachable":        {"redisHost": "127.0.0.1:1", "consumerID": "g", "dialTimeout": "200ms"},
	}
	for name, md := range cases {
		t.Run(name, func(t *testing.T) {
			b := New()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := b.Init(ctx, md); err == nil {
				t.Fatalf("Init(%v) succeeded, want an error", md)
			}
			_ = b.(sdk.Closer).Close()
		})
	}
}

func BenchmarkPubSub(b *testing.B) {
	md := sdk.Metadata{"redisHost": redisAddr, "maxLenApprox": "100000"}
	sdktest.BenchmarkPubSub(b, New, md, 8)
}
