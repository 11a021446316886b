package main

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata. Field names in the YAML are
// Dapr's (state.redis v1.14); see README.md for the table.
type config struct {
	addrs            []string
	username         string
	password         string
	db               int
	cluster          bool
	failover         bool
	sentinelMaster   string
	sentinelUsername string
	sentinelPassword string
	tls              *tls.Config

	maxRetries      int
	minRetryBackoff time.Duration
	maxRetryBackoff time.Duration
	dialTimeout     time.Duration
	readTimeout     time.Duration
	writeTimeout    time.Duration
	poolSize        int
	poolTimeout     time.Duration
	minIdleConns    int
	idleTimeout     time.Duration
	maxConnAge      time.Duration

	// defaultTTL applies to writes whose request carries no ttlInSeconds;
	// zero means no expiry.
	defaultTTL time.Duration
}

// parse reads the component metadata. Unknown keys are ignored, as Dapr
// ignores them (keyPrefix and actorStateStore are the proxy's business).
func parse(md sdk.Metadata) (config, error) {
	c := config{
		maxRetries:      3,
		minRetryBackoff: 8 * time.Millisecond,
		maxRetryBackoff: 512 * time.Millisecond,
		dialTimeout:     5 * time.Second,
		readTimeout:     3 * time.Second,
	}
	host := strings.TrimSpace(md["redisHost"])
	if host == "" {
		return c, fmt.Errorf("metadata redisHost is required (host:port)")
	}
	for _, a := range strings.Split(host, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.addrs = append(c.addrs, a)
		}
	}
	c.username = md["redisUsername"]
	c.password = md["redisPassword"]
	c.sentinelMaster = md["sentinelMasterName"]
	c.sentinelUsername = md["sentinelUsername"]
	c.sentinelPassword = md["sentinelPassword"]

	var err error
	p := parser{md: md}
	c.db = p.int("redisDB", 0)
	switch t := strings.ToLower(md["redisType"]); t {
	case "", "node":
	case "cluster":
		c.cluster = true
	default:
		return c, fmt.Errorf("metadata redisType=%q: want node or cluster", t)
	}
	c.failover = p.bool("failover", false)
	if c.failover && c.sentinelMaster == "" {
		return c, fmt.Errorf("metadata failover=true needs sentinelMasterName")
	}
	if p.bool("enableTLS", false) {
		c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	// redisMaxRetries & co. are Dapr's older spellings of the same knobs.
	c.maxRetries = p.int("redisMaxRetries", p.int("maxRetries", c.maxRetries))
	if c.maxRetries == 0 {
		c.maxRetries = -1 // go-redis reads 0 as "default (3)" and -1 as "none"
	}
	c.minRetryBackoff = p.duration("redisMinRetryInterval", c.minRetryBackoff)
	c.maxRetryBackoff = p.duration("redisMaxRetryInterval", p.duration("maxRetryBackoff", c.maxRetryBackoff))
	c.dialTimeout = p.duration("dialTimeout", c.dialTimeout)
	c.readTimeout = p.duration("readTimeout", c.readTimeout)
	c.writeTimeout = p.duration("writeTimeout", c.writeTimeout)
	c.poolSize = p.int("poolSize", 0)
	c.poolTimeout = p.duration("poolTimeout", 0)
	c.minIdleConns = p.int("minIdleConns", 0)
	c.idleTimeout = p.duration("idleTimeout", 0)
	c.maxConnAge = p.duration("maxConnAge", 0)
	if v, ok := md[sdk.TTLMetadataKey]; ok && v != "" {
		c.defaultTTL, _, err = sdk.ParseTTL(map[string]string{sdk.TTLMetadataKey: v})
		if err != nil {
			return c, fmt.Errorf("component %w", err)
		}
	}
	if p.err != nil {
		return c, p.err
	}
	return c, nil
}

// parser reads typed values from metadata, keeping the first error.
type parser struct {
	md  sdk.Metadata
	err error
}

func (p *parser) fail(key, v, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("metadata %s=%q: want %s", key, v, want)
	}
}

func (p *parser) int(key string, def int) int {
	v := strings.TrimSpace(p.md[key])
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(key, v, "an integer")
		return def
	}
	return n
}

func (p *parser) bool(key string, def bool) bool {
	v := strings.TrimSpace(p.md[key])
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(key, v, "true or false")
		return def
	}
	return b
}

// duration accepts a Go duration ("5s") or a plain integer of milliseconds;
// "-1" is kept as -1 (go-redis reads it as "no timeout").
func (p *parser) duration(key string, def time.Duration) time.Duration {
	v := strings.TrimSpace(p.md[key])
	if v == "" {
		return def
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		p.fail(key, v, `a duration such as "5s" or an integer of milliseconds`)
		return def
	}
	if n == -1 {
		return -1
	}
	return time.Duration(n) * time.Millisecond
}
