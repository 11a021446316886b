package main

import (
	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/internal/redisconf"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata (Dapr's lock.redis field names).
type config struct {
	opts redis.Options
}

// parse reads the metadata; unknown keys are ignored (keyPrefix is the
// sidecar's business).
func parse(md sdk.Metadata) (config, error) {
	opts, err := redisconf.Standalone(md, "lock.redis needs one standalone Redis (a lock across a cluster or replicas is not safe)")
	return config{opts: opts}, err
}
