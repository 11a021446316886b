package main

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata (Dapr's configuration.redis field names).
type config struct {
	opts redis.Options
}

// parse reads the metadata; unknown keys are ignored (keyPrefix is the
// sidecar's business).
func parse(md sdk.Metadata) (config, error) {
	c := config{opts: redis.Options{
		MaxRetries:      3,
		MinRetryBackoff: 8 * time.Millisecond,
		MaxRetryBackoff: 512 * time.Millisecond,
		DialTimeout:     5 * time.Second,
		ReadTimeout:     3 * time.Second,
	}}
	get := func(k string) string { return strings.TrimSpace(md[k]) }
	c.opts.Addr = get("redisHost")
	if c.opts.Addr == "" {
		return c, fmt.Errorf("metadata redisHost is required (host:port)")
	}
	if strings.Contains(c.opts.Addr, ",") {
		return c, fmt.Errorf("metadata redisHost=%q: configuration.redis supports one standalone Redis (keyspace notifications are per node)", c.opts.Addr)
	}
	c.opts.Username, c.opts.Password = get("redisUsername"), md["redisPassword"]
	var err error
	if v := get("redisDB"); v != "" {
		if c.opts.DB, err = strconv.Atoi(v); err != nil || c.opts.DB < 0 {
			return c, fmt.Errorf("metadata redisDB=%q: want a database number", v)
		}
	}
	if v := get("enableTLS"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("metadata enableTLS=%q: want true or false", v)
		}
		if on {
			c.opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	if v := get("maxRetries"); v != "" {
		if c.opts.MaxRetries, err = strconv.Atoi(v); err != nil || c.opts.MaxRetries < 0 {
			return c, fmt.Errorf("metadata maxRetries=%q: want a whole number ≥ 0", v)
		}
		if c.opts.MaxRetries == 0 {
			c.opts.MaxRetries = -1 // go-redis: -1 disables retries
		}
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"dialTimeout", &c.opts.DialTimeout}, {"readTimeout", &c.opts.ReadTimeout}, {"writeTimeout", &c.opts.WriteTimeout}} {
		if v := get(d.key); v != "" {
			if *d.dst, err = duration(v); err != nil {
				return c, fmt.Errorf("metadata %s=%q: %w", d.key, v, err)
			}
		}
	}
	if v := get("poolSize"); v != "" {
		if c.opts.PoolSize, err = strconv.Atoi(v); err != nil || c.opts.PoolSize <= 0 {
			return c, fmt.Errorf("metadata poolSize=%q: want a positive number", v)
		}
	}
	return c, nil
}

// duration accepts a Go duration ("500ms") or whole seconds ("5").
func duration(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("want a duration like 3s or a number of seconds")
	}
	return d, nil
}
