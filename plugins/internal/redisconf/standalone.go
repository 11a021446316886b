package redisconf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Node reads redisHost (required), redisUsername, redisPassword, redisDB
// and enableTLS into o, returning the first bad value. When single is not
// empty the component needs one server: a comma-separated redisHost is
// refused with single as the reason.
func Node(md map[string]string, o *redis.Options, single string) error {
	get := func(k string) string { return strings.TrimSpace(md[k]) }
	o.Addr = get("redisHost")
	if o.Addr == "" {
		return errors.New("metadata redisHost is required (host:port)")
	}
	if single != "" && strings.Contains(o.Addr, ",") {
		return fmt.Errorf("metadata redisHost=%q: %s", o.Addr, single)
	}
	o.Username, o.Password = get("redisUsername"), md["redisPassword"]
	if v := get("redisDB"); v != "" {
		db, err := strconv.Atoi(v)
		if err != nil || db < 0 {
			return fmt.Errorf("metadata redisDB=%q: want a database number", v)
		}
		o.DB = db
	}
	if v := get("enableTLS"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("metadata enableTLS=%q: want true or false", v)
		}
		if on {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	return nil
}

// Standalone reads the options of a one-server component (lock.redis,
// configuration.redis): Node, then maxRetries (0 means none),
// dialTimeout, readTimeout, writeTimeout (a Go duration or whole seconds)
// and poolSize, with go-redis's defaults. single is why the component
// refuses several hosts.
func Standalone(md map[string]string, single string) (redis.Options, error) {
	o := redis.Options{
		MaxRetries:      3,
		MinRetryBackoff: 8 * time.Millisecond,
		MaxRetryBackoff: 512 * time.Millisecond,
		DialTimeout:     5 * time.Second,
		ReadTimeout:     3 * time.Second,
	}
	if err := Node(md, &o, single); err != nil {
		return o, err
	}
	get := func(k string) string { return strings.TrimSpace(md[k]) }
	var err error
	if v := get("maxRetries"); v != "" {
		if o.MaxRetries, err = strconv.Atoi(v); err != nil || o.MaxRetries < 0 {
			return o, fmt.Errorf("metadata maxRetries=%q: want a whole number ≥ 0", v)
		}
		if o.MaxRetries == 0 {
			o.MaxRetries = -1 // go-redis: -1 disables retries
		}
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"dialTimeout", &o.DialTimeout}, {"readTimeout", &o.ReadTimeout}, {"writeTimeout", &o.WriteTimeout}} {
		if v := get(d.key); v != "" {
			if *d.dst, err = seconds(v); err != nil {
				return o, fmt.Errorf("metadata %s=%q: %w", d.key, v, err)
			}
		}
	}
	if v := get("poolSize"); v != "" {
		if o.PoolSize, err = strconv.Atoi(v); err != nil || o.PoolSize <= 0 {
			return o, fmt.Errorf("metadata poolSize=%q: want a positive number", v)
		}
	}
	return o, nil
}

// seconds accepts a Go duration ("500ms") or whole seconds ("5"). It
// returns at once, unlike mdparse.Reader, as the standalone components
// report the first bad key.
func seconds(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("want a duration like 3s or a number of seconds")
	}
	return d, nil
}

// Dial connects a client for o and checks the server answers within
// o.DialTimeout+o.ReadTimeout; on failure the client is closed.
func Dial(ctx context.Context, o *redis.Options) (*redis.Client, error) {
	c := redis.NewClient(o)
	pctx, cancel := context.WithTimeout(ctx, o.DialTimeout+o.ReadTimeout)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("connecting to redis at %s: %w", o.Addr, err)
	}
	return c, nil
}
