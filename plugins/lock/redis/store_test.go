package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

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
	f := func() sdk.LockStore { return New(nil) }
	// A and B are separate clients (connection pools), as two plugin processes.
	sdktest.ExerciseLock(t, f, f, sdk.Metadata{"redisHost": redisAddr, "redisDB": "3"})
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		md      sdk.Metadata
		wantErr string
	}{
		{"minimal", sdk.Metadata{"redisHost": redisAddr}, ""},
		{"all", sdk.Metadata{"redisHost": redisAddr, "redisUsername": "u", "redisPassword": "p", "redisDB": "2", "enableTLS": "false",
			"maxRetries": "0", "dialTimeout": "1s", "readTimeout": "2", "writeTimeout": "500ms", "poolSize": "4"}, ""},
		{"no host", sdk.Metadata{}, "redisHost"},
		{"cluster list", sdk.Metadata{"redisHost": "a:1,b:2"}, "standalone"},
		{"bad db", sdk.Metadata{"redisHost": redisAddr, "redisDB": "x"}, "redisDB"},
		{"bad tls", sdk.Metadata{"redisHost": redisAddr, "enableTLS": "yes please"}, "enableTLS"},
		{"bad retries", sdk.Metadata{"redisHost": redisAddr, "maxRetries": "-2"}, "maxRetries"},
		{"bad timeout", sdk.Metadata{"redisHost": redisAddr, "readTimeout": "soon"}, "readTimeout"},
		{"bad pool", sdk.Metadata{"redisHost": redisAddr, "poolSize": "0"}, "poolSize"},
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

func TestInitFailsFastOnClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s := New(nil)
	start := time.Now()
	err = s.Init(context.Background(), sdk.Metadata{"redisHost": addr, "maxRetries": "0", "dialTimeout": "1s"})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Init against a closed port: %v, want an error naming the address", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Init took %s to fail", d)
	}
}
