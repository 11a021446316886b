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
		Type:  "bindings.redis",
		Keys:  metadataKeys,
		Parse: func(md sdk.Metadata) error { _, err := parse(md); return err },
	})
}
