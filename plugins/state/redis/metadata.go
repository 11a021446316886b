package main

import (
	"fmt"
	"time"

	"github.com/outrigger/outrigger/plugins/internal/mdparse"
	"github.com/outrigger/outrigger/plugins/internal/redisconf"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata. Field names in the YAML are
// Dapr's (state.redis v1.14); see README.md for the table.
type config struct {
	redisconf.Settings

	// defaultTTL applies to writes whose request carries no ttlInSeconds;
	// zero means no expiry.
	defaultTTL time.Duration
}

// parse reads the component metadata. Unknown keys are ignored, as Dapr
// ignores them (keyPrefix and actorStateStore are the proxy's business).
func parse(md sdk.Metadata) (config, error) {
	var c config
	p := mdparse.New(md)
	if err := redisconf.ReadConnection(md, p, &c.Settings); err != nil {
		return c, err
	}
	// state.redis also reads the pool keys and keeps "-1" as go-redis's
	// "no timeout".
	redisconf.ReadTuning(p, &c.Settings, redisconf.Tuning{Pool: true, MinusOneNoTimeout: true})
	if v, ok := md[sdk.TTLMetadataKey]; ok && v != "" {
		var err error
		c.defaultTTL, _, err = sdk.ParseTTL(map[string]string{sdk.TTLMetadataKey: v})
		if err != nil {
			return c, fmt.Errorf("component %w", err)
		}
	}
	if err := p.Err(); err != nil {
		return c, err
	}
	return c, nil
}
