package redisconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/outrigger/outrigger/plugins/internal/mdparse"
)

// Settings are the connection settings of state.redis and pubsub.redis.
type Settings struct {
	Addrs            []string
	Username         string
	Password         string
	DB               int
	Cluster          bool
	Failover         bool
	SentinelMaster   string
	SentinelUsername string
	SentinelPassword string
	TLS              *tls.Config

	MaxRetries      int
	MinRetryBackoff time.Duration
	MaxRetryBackoff time.Duration
	DialTimeout     time.Duration
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	PoolSize        int
	PoolTimeout     time.Duration
	MinIdleConns    int
	IdleTimeout     time.Duration
	MaxConnAge      time.Duration
}

// ReadConnection reads redisHost (required, comma-separated for several
// nodes), redisUsername, redisPassword, redisDB, redisType, failover with
// sentinelMasterName/sentinelUsername/sentinelPassword, and enableTLS into s.
// A missing redisHost, an unknown redisType or failover without a master
// name is returned at once; a bad number or bool is kept in r.
func ReadConnection(md map[string]string, r *mdparse.Reader, s *Settings) error {
	host := strings.TrimSpace(md["redisHost"])
	if host == "" {
		return errors.New("metadata redisHost is required (host:port)")
	}
	for _, a := range strings.Split(host, ",") {
		if a = strings.TrimSpace(a); a != "" {
			s.Addrs = append(s.Addrs, a)
		}
	}
	s.Username = md["redisUsername"]
	s.Password = md["redisPassword"]
	s.SentinelMaster = md["sentinelMasterName"]
	s.SentinelUsername = md["sentinelUsername"]
	s.SentinelPassword = md["sentinelPassword"]
	s.DB = r.Int("redisDB", 0)
	switch t := strings.ToLower(md["redisType"]); t {
	case "", "node":
	case "cluster":
		s.Cluster = true
	default:
		return fmt.Errorf("metadata redisType=%q: want node or cluster", t)
	}
	s.Failover = r.Bool("failover", false)
	if s.Failover && s.SentinelMaster == "" {
		return errors.New("metadata failover=true needs sentinelMasterName")
	}
	if r.Bool("enableTLS", false) {
		s.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return nil
}

// Tuning says which optional keys ReadTuning reads, and how.
type Tuning struct {
	// Pool adds redisMinRetryInterval, poolTimeout, idleTimeout and
	// maxConnAge (state.redis documents them; pubsub.redis does not).
	Pool bool
	// MinusOneNoTimeout keeps an integer -1 as -1, go-redis's "no
	// timeout", instead of reading it as -1ms (state.redis does this;
	// pubsub.redis has always read it as milliseconds).
	MinusOneNoTimeout bool
}

// ReadTuning reads redisMaxRetries (or maxRetries; 0 means none),
// redisMaxRetryInterval (or maxRetryBackoff), dialTimeout, readTimeout,
// writeTimeout, poolSize and minIdleConns, plus the keys t adds, with
// go-redis's defaults. Integer durations are milliseconds. Errors go to r.
func ReadTuning(r *mdparse.Reader, s *Settings, t Tuning) {
	dur := func(key string, def time.Duration) time.Duration {
		if t.MinusOneNoTimeout {
			if n, err := strconv.ParseInt(r.String(key), 10, 64); err == nil && n == -1 {
				return -1
			}
		}
		return r.Duration(key, def, time.Millisecond)
	}
	// redisMaxRetries & co. are Dapr's older spellings of the same knobs.
	s.MaxRetries = r.Int("redisMaxRetries", r.Int("maxRetries", 3))
	if s.MaxRetries == 0 {
		s.MaxRetries = -1 // go-redis reads 0 as "default (3)" and -1 as "none"
	}
	if t.Pool {
		s.MinRetryBackoff = dur("redisMinRetryInterval", 8*time.Millisecond)
	}
	s.MaxRetryBackoff = dur("redisMaxRetryInterval", dur("maxRetryBackoff", 512*time.Millisecond))
	s.DialTimeout = dur("dialTimeout", 5*time.Second)
	s.ReadTimeout = dur("readTimeout", 3*time.Second)
	s.WriteTimeout = dur("writeTimeout", 0)
	s.PoolSize = r.Int("poolSize", 0)
	if t.Pool {
		s.PoolTimeout = dur("poolTimeout", 0)
	}
	s.MinIdleConns = r.Int("minIdleConns", 0)
	if t.Pool {
		s.IdleTimeout = dur("idleTimeout", 0)
		s.MaxConnAge = dur("maxConnAge", 0)
	}
}

// UniversalOptions are the go-redis options for s: a cluster client when
// Cluster, a sentinel client when Failover, else a single-node client.
func (s Settings) UniversalOptions() *redis.UniversalOptions {
	o := &redis.UniversalOptions{
		Addrs:            s.Addrs,
		DB:               s.DB,
		Username:         s.Username,
		Password:         s.Password,
		SentinelUsername: s.SentinelUsername,
		SentinelPassword: s.SentinelPassword,
		MaxRetries:       s.MaxRetries,
		MinRetryBackoff:  s.MinRetryBackoff,
		MaxRetryBackoff:  s.MaxRetryBackoff,
		DialTimeout:      s.DialTimeout,
		ReadTimeout:      s.ReadTimeout,
		WriteTimeout:     s.WriteTimeout,
		PoolSize:         s.PoolSize,
		PoolTimeout:      s.PoolTimeout,
		MinIdleConns:     s.MinIdleConns,
		ConnMaxIdleTime:  s.IdleTimeout,
		ConnMaxLifetime:  s.MaxConnAge,
		TLSConfig:        s.TLS,
		IsClusterMode:    s.Cluster,
		DisableIdentity:  true,
		// Hitless-upgrade notifications are a Redis Enterprise feature; off
		// saves a command per connection and a goroutine.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if s.Failover {
		o.MasterName = s.SentinelMaster
	}
	return o
}
