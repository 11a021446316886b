package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/outrigger/outrigger/plugins/internal/mdparse"
	"github.com/outrigger/outrigger/plugins/internal/redisconf"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata. Field names are Dapr's
// (pubsub.redis v1.14); see README.md for the table.
type config struct {
	redisconf.Settings

	consumerID        string
	redeliverInterval time.Duration // 0 disables reclaiming
	processingTimeout time.Duration // 0 disables reclaiming
	queueDepth        int
	concurrency       int
	maxLenApprox      int64
}

// parse reads the component metadata. Unknown keys are ignored, as Dapr
// ignores them.
func parse(md sdk.Metadata) (config, error) {
	c := config{
		redeliverInterval: 60 * time.Second,
		processingTimeout: 15 * time.Second,
		queueDepth:        100,
		concurrency:       10,
	}
	c.consumerID = strings.TrimSpace(md[sdk.ConsumerIDKey])
	if strings.TrimSpace(md["redisHost"]) != "" && c.consumerID == "" {
		// Checked before the rest of the connection settings, as always.
		return c, errors.New("metadata consumerID is required (the host sets it to the app id)")
	}
	p := mdparse.New(md)
	if err := redisconf.ReadConnection(md, p, &c.Settings); err != nil {
		return c, err
	}
	c.redeliverInterval = p.Duration("redeliverInterval", c.redeliverInterval, time.Millisecond)
	c.processingTimeout = p.Duration("processingTimeout", c.processingTimeout, time.Millisecond)
	c.queueDepth = p.Int("queueDepth", c.queueDepth)
	c.concurrency = p.Int("concurrency", c.concurrency)
	c.maxLenApprox = int64(p.Int("maxLenApprox", 0))
	// Unlike state.redis, pubsub.redis reads no pool keys and reads an
	// integer -1 as -1ms, as it always has.
	redisconf.ReadTuning(p, &c.Settings, redisconf.Tuning{})
	if err := p.Err(); err != nil {
		return c, err
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
