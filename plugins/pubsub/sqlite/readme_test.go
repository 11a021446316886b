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
		Type: "pubsub.sqlite",
		Keys: []string{
			"connectionString", "consumerID", "visibilityTimeout", "retentionPeriod", "initialOffset",
			"maxInFlight", "tablePrefix", "timeout", "busyTimeout", "disableWAL",
		},
		Parse: func(md sdk.Metadata) error {
			if md[sdk.ConsumerIDKey] == "" {
				md[sdk.ConsumerIDKey] = "readme-app" // the sidecar injects it
			}
			_, err := parseConfig(md)
			return err
		},
		SharedRows: true, // aliases share a row
	})
}
