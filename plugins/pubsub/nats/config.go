package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/outrigger/outrigger/plugins/internal/mdparse"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata (Dapr pubsub.jetstream names).
type config struct {
	url            string
	name           string
	token          string
	jwt, seedKey   string
	streamName     string
	durable        string // durableName, else consumerID
	deliverPolicy  jetstream.DeliverPolicy
	startSequence  uint64
	startTime      time.Time
	ackWait        time.Duration
	maxDeliver     int
	maxAckPending  int
	backOff        []time.Duration
	nakDelay       time.Duration
	memoryStorage  bool
	replicas       int
	single         bool // concurrency single: one message at a time
	connectTimeout time.Duration
}

func parse(md sdk.Metadata) (config, error) {
	c := config{
		url:            "nats://127.0.0.1:4222",
		name:           "outrigger",
		ackWait:        30 * time.Second,
		maxDeliver:     -1,
		maxAckPending:  1000,
		replicas:       1,
		connectTimeout: 5 * time.Second,
	}
	if v := strings.TrimSpace(md["natsURL"]); v != "" {
		c.url = v
	}
	if v := strings.TrimSpace(md["name"]); v != "" {
		c.name = v
	}
	c.token, c.jwt, c.seedKey = md["token"], md["jwt"], md["seedKey"]
	if (c.jwt == "") != (c.seedKey == "") {
		return c, errors.New("metadata jwt and seedKey go together")
	}
	c.streamName = strings.TrimSpace(md["streamName"])
	c.durable = strings.TrimSpace(md["durableName"])
	if c.durable == "" {
		c.durable = strings.TrimSpace(md[sdk.ConsumerIDKey])
	}
	if c.durable == "" {
		return c, errors.New("metadata durableName or consumerID is required (the host sets consumerID to the app id)")
	}
	p := mdparse.New(md)
	switch d := strings.ToLower(strings.TrimSpace(md["deliverPolicy"])); d {
	case "", "all":
		c.deliverPolicy = jetstream.DeliverAllPolicy
	case "last":
		c.deliverPolicy = jetstream.DeliverLastPolicy
	case "new":
		c.deliverPolicy = jetstream.DeliverNewPolicy
	case "sequence":
		c.deliverPolicy = jetstream.DeliverByStartSequencePolicy
		c.startSequence = uint64(p.Int("startSequence", 0))
		if c.startSequence == 0 {
			return c, errors.New("metadata deliverPolicy=sequence needs startSequence (1 or more)")
		}
	case "time":
		c.deliverPolicy = jetstream.DeliverByStartTimePolicy
		n := p.Int("startTime", 0)
		if n <= 0 {
			return c, errors.New("metadata deliverPolicy=time needs startTime (Unix seconds)")
		}
		c.startTime = time.Unix(int64(n), 0)
	default:
		return c, fmt.Errorf("metadata deliverPolicy=%q: want all, last, new, sequence or time", d)
	}
	c.ackWait = p.Duration("ackWait", c.ackWait, time.Millisecond)
	c.maxDeliver = p.Int("maxDeliver", c.maxDeliver)
	c.maxAckPending = p.Int("maxAckPending", c.maxAckPending)
	c.nakDelay = p.Duration("nakDelay", 0, time.Millisecond)
	c.memoryStorage = p.Bool("memoryStorage", false)
	c.replicas = p.Int("replicas", c.replicas)
	c.connectTimeout = p.Duration("connectTimeout", c.connectTimeout, time.Millisecond)
	if v := strings.TrimSpace(md["backOff"]); v != "" {
		for _, s := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil || d <= 0 {
				return c, fmt.Errorf("metadata backOff=%q: want comma-separated positive durations", v)
			}
			c.backOff = append(c.backOff, d)
		}
	}
	switch m := strings.ToLower(strings.TrimSpace(md["concurrency"])); m {
	case "", "parallel":
	case "single":
		c.single = true
	default:
		return c, fmt.Errorf("metadata concurrency=%q: want parallel or single", m)
	}
	if p.Err() != nil {
		return c, p.Err()
	}
	switch {
	case c.ackWait <= 0:
		return c, errors.New("metadata ackWait must be positive")
	case c.maxDeliver == 0 || c.maxDeliver < -1:
		return c, fmt.Errorf("metadata maxDeliver=%d: want -1 (unlimited) or 1 or more", c.maxDeliver)
	case c.maxAckPending < 1:
		return c, fmt.Errorf("metadata maxAckPending=%d: want 1 or more", c.maxAckPending)
	case c.replicas < 1:
		return c, fmt.Errorf("metadata replicas=%d: want 1 or more", c.replicas)
	case c.nakDelay < 0:
		return c, errors.New("metadata nakDelay must not be negative")
	}
	return c, nil
}
