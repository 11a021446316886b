package main

import (
	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/internal/redisconf"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata (Dapr's configuration.redis field names).
type config struct {
	opts redis.Options
}

// parse reads the metadata; unknown keys are ignored (keyPrefix is the
// sidecar's business).
func parse(md sdk.Metadata) (config, error) {
	opts, err := redisconf.Standalone(md, "configuration.redis supports one standalone Redis (keyspace notifications are per node)")
	return config{opts: opts}, err
}
