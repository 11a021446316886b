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
		Type: "pubsub.redis",
		Keys: []string{
			"redisHost", "redisUsername", "redisPassword", "redisDB", "redisType", "enableTLS", "failover",
			"sentinelMasterName", "sentinelUsername", "sentinelPassword", "consumerID", "redeliverInterval",
			"processingTimeout", "queueDepth", "concurrency", "maxLenApprox", "maxRetries", "redisMaxRetries",
			"maxRetryBackoff", "redisMaxRetryInterval", "dialTimeout", "readTimeout", "writeTimeout", "poolSize",
			"minIdleConns",
		},
		Parse: func(md sdk.Metadata) error {
			if md[sdk.ConsumerIDKey] == "" {
				md[sdk.ConsumerIDKey] = "readme-app" // the sidecar injects it
			}
			_, err := parse(md)
			return err
		},
		SharedRows: true, // aliases share a row
	})
}
