package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata. Field names are Dapr's
// (pubsub.redis v1.14); see README.md for the table.
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

	consumerID        string
	redeliverInterval time.Duration // 0 disables reclaiming
	processingTimeout time.Duration // 0 disables reclaiming
	queueDepth        int
	concurrency       int
	maxLenApprox      int64

	maxRetries      int
	maxRetryBackoff time.Duration
	dialTimeout     time.Duration
	readTimeout     time.Duration
	writeTimeout    time.Duration
	poolSize        int
	minIdleConns    int
}

// parse reads the component metadata. Unknown keys are ignored, as Dapr
// ignores them.
func parse(md sdk.Metadata) (config, error) {
	c := config{
		redeliverInterval: 60 * time.Second,
		processingTimeout: 15 * time.Second,
		queueDepth:        100,
		concurrency:       10,
		maxRetries:        3,
		maxRetryBackoff:   512 * time.Millisecond,
		dialTimeout:       5 * time.Second,
		readTimeout:       3 * time.Second,
	}
	host := strings.TrimSpace(md["redisHost"])
	if host == "" {
		return c, errors.New("metadata redisHost is required (host:port)")
	}
	for _, a := range strings.Split(host, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.addrs = append(c.addrs, a)
		}
	}
	c.consumerID = strings.TrimSpace(md[sdk.ConsumerIDKey])
	if c.consumerID == "" {
		return c, errors.New("metadata consumerID is required (the host sets it to the app id)")
	}
	c.username = md["redisUsername"]
	c.password = md["redisPassword"]
	c.sentinelMaster = md["sentinelMasterName"]
	c.sentinelUsername = md["sentinelUsername"]
	c.sentinelPassword = md["sentinelPassword"]

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
		return c, errors.New("metadata failover=true needs sentinelMasterName")
	}
	if p.bool("enableTLS", false) {
		c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c.redeliverInterval = p.duration("redeliverInterval", c.redeliverInterval)
	c.processingTimeout = p.duration("processingTimeout", c.processingTimeout)
	c.queueDepth = p.int("queueDepth", c.queueDepth)
	c.concurrency = p.int("concurrency", c.concurrency)
	c.maxLenApprox = int64(p.int("maxLenApprox", 0))
	c.maxRetries = p.int("redisMaxRetries", p.int("maxRetries", c.maxRetries))
	if c.maxRetries == 0 {
		c.maxRetries = -1 // go-redis reads 0 as "default (3)" and -1 as "none"
	}
	c.maxRetryBackoff = p.duration("redisMaxRetryInterval", p.duration("maxRetryBackoff", c.maxRetryBackoff))
	c.dialTimeout = p.duration("dialTimeout", c.dialTimeout)
	c.readTimeout = p.duration("readTimeout", c.readTimeout)
	c.writeTimeout = p.duration("writeTimeout", c.writeTimeout)
	c.poolSize = p.int("poolSize", 0)
	c.minIdleConns = p.int("minIdleConns", 0)
	if p.err != nil {
		return c, p.err
	}
	switch {
	case c.queueDepth < 1:
		return c, fmt.Errorf("metadata queueDepth=%d: must be at least 1", c.queueDepth)
	case c.concurrency < 1:
		return c, fmt.Errorf("metadata concurrency=%d: must be at least 1", c.concurrency)
	case c.concurrency > sdk.MaxInFlightPerStream:
		return c, fmt.Errorf("metadata concurrency=%d: at most %d", c.concurrency, sdk.MaxInFlightPerStream)
	case c.maxLenApprox < 0:
		return c, fmt.Errorf("metadata maxLenApprox=%d: must not be negative", c.maxLenApprox)
	case c.redeliverInterval < 0 || c.processingTimeout < 0:
		return c, errors.New("metadata redeliverInterval and processingTimeout must not be negative (0 disables redelivery)")
	}
	return c, nil
}

// reclaims reports whether pending messages of dead consumers are reclaimed.
func (c config) reclaims() bool { return c.redeliverInterval > 0 && c.processingTimeout > 0 }

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

// duration accepts a Go duration ("5s") or a plain integer of milliseconds
// (as Dapr's redis components read redeliverInterval and processingTimeout).
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
	return time.Duration(n) * time.Millisecond
}
