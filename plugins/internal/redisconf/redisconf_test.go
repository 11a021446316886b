package redisconf

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outrigger/outrigger/plugins/internal/mdparse"
)

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		md      map[string]string
		tuning  Tuning
		wantErr string
		check   func(t *testing.T, s Settings)
	}{
		{name: "missing host", md: map[string]string{}, wantErr: "redisHost is required"},
		{name: "bad type", md: map[string]string{"redisHost": "h:1", "redisType": "ring"}, wantErr: "redisType"},
		{name: "failover without master", md: map[string]string{"redisHost": "h:1", "failover": "true"}, wantErr: "sentinelMasterName"},
		{name: "bad db kept in reader", md: map[string]string{"redisHost": "h:1", "redisDB": "x"}, wantErr: `redisDB="x"`},
		{name: "bad timeout", md: map[string]string{"redisHost": "h:1", "dialTimeout": "soon"}, wantErr: "dialTimeout"},
		{name: "defaults", md: map[string]string{"redisHost": "h:1"}, check: func(t *testing.T, s Settings) {
			if s.MaxRetries != 3 || s.DialTimeout != 5*time.Second || s.ReadTimeout != 3*time.Second ||
				s.MaxRetryBackoff != 512*time.Millisecond || s.MinRetryBackoff != 0 || s.TLS != nil {
				t.Errorf("%+v", s)
			}
		}},
		{name: "pool keys only with Pool", md: map[string]string{"redisHost": "h:1", "poolTimeout": "9", "readTimeout": "-1"},
			check: func(t *testing.T, s Settings) {
				if s.PoolTimeout != 0 || s.ReadTimeout != -time.Millisecond {
					t.Errorf("%+v", s)
				}
			}},
		{name: "state tuning", tuning: Tuning{Pool: true, MinusOneNoTimeout: true},
			md: map[string]string{"redisHost": "a:1, b:2", "redisType": "cluster", "enableTLS": "1", "redisMaxRetries": "0",
				"poolTimeout": "9", "readTimeout": "-1", "redisMaxRetryInterval": "2s", "failover": "true", "sentinelMasterName": "m"},
			check: func(t *testing.T, s Settings) {
				o := s.UniversalOptions()
				if len(o.Addrs) != 2 || o.Addrs[1] != "b:2" || !o.IsClusterMode || o.TLSConfig == nil || o.MaxRetries != -1 ||
					o.PoolTimeout != 9*time.Millisecond || o.ReadTimeout != -1 || o.MaxRetryBackoff != 2*time.Second ||
					o.MinRetryBackoff != 8*time.Millisecond || o.MasterName != "m" {
					t.Errorf("%+v", o)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Settings
			r := mdparse.New(tc.md)
			err := ReadConnection(tc.md, r, &s)
			if err == nil {
				ReadTuning(r, &s, tc.tuning)
				err = r.Err()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestStandalone(t *testing.T) {
	const why = "needs one server"
	for _, tc := range []struct {
		md      map[string]string
		wantErr string
	}{
		{map[string]string{}, "redisHost is required"},
		{map[string]string{"redisHost": "a:1,b:2"}, `redisHost="a:1,b:2": needs one server`},
		{map[string]string{"redisHost": "h:1", "redisDB": "-1"}, "want a database number"},
		{map[string]string{"redisHost": "h:1", "enableTLS": "yes"}, "want true or false"},
		{map[string]string{"redisHost": "h:1", "maxRetries": "-2"}, "maxRetries"},
		{map[string]string{"redisHost": "h:1", "readTimeout": "soon"}, "want a duration like 3s or a number of seconds"},
		{map[string]string{"redisHost": "h:1", "poolSize": "0"}, "want a positive number"},
	} {
		if _, err := Standalone(tc.md, why); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: err = %v, want %q", tc.md, err, tc.wantErr)
		}
	}
	o, err := Standalone(map[string]string{"redisHost": " h:1 ", "redisDB": "2", "maxRetries": "0", "dialTimeout": "7",
		"readTimeout": "250ms", "poolSize": "3", "enableTLS": "true"}, why)
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "h:1" || o.DB != 2 || o.MaxRetries != -1 || o.DialTimeout != 7*time.Second ||
		o.ReadTimeout != 250*time.Millisecond || o.PoolSize != 3 || o.TLSConfig == nil {
		t.Errorf("%+v", o)
	}
	// Without a reason several hosts pass (bindings.redis).
	if _, err := Standalone(map[string]string{"redisHost": "a:1,b:2"}, ""); err != nil {
		t.Errorf("no reason given: %v", err)
	}
}

func TestDial(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := Standalone(map[string]string{"redisHost": "127.0.0.1:6379"}, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ctx, &o)
	if err != nil {
		t.Fatalf("%v (start Redis on 127.0.0.1:6379, e.g. `redis-server --daemonize yes`)", err)
	}
	_ = c.Close()
	o.Addr, o.DialTimeout, o.MaxRetries = "127.0.0.1:1", time.Second, -1
	if _, err := Dial(ctx, &o); err == nil || !strings.Contains(err.Error(), "connecting to redis at 127.0.0.1:1") {
		t.Fatalf("closed port: err = %v", err)
	}
}
