package main

import (
	"testing"

	"github.com/outrigger/outrigger/plugins/internal/readmetest"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// TestREADME pins the README shape, checks every metadata key is
// documented, and parses the metadata of every ```yaml component
// example loaded through the real Component loader (see package readmetest).
func TestREADME(t *testing.T) {
	readmetest.Check(t, readmetest.Options{
		Type: "state.redis",
		Keys: []string{
			"redisHost", "redisUsername", "redisPassword", "redisDB", "redisType", "enableTLS", "failover",
			"sentinelMasterName", "sentinelUsername", "sentinelPassword", "maxRetries", "redisMaxRetries",
			"maxRetryBackoff", "redisMaxRetryInterval", "redisMinRetryInterval", "dialTimeout", "readTimeout",
			"writeTimeout", "poolSize", "poolTimeout", "minIdleConns", "idleTimeout", "maxConnAge", "ttlInSeconds",
		},
		Parse:      func(md sdk.Metadata) error { _, err := parse(md); return err },
		SharedRows: true, // aliases share a row
	})
}
