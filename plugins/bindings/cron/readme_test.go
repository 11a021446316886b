package main

import (
	"context"
	"testing"

	"github.com/outrigger/outrigger/plugins/internal/readmetest"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// TestREADME pins the README shape, checks every metadata key is
// documented, and Inits the binding with every ```yaml component example
// loaded through the real Component loader (see package readmetest).
func TestREADME(t *testing.T) {
	readmetest.Check(t, readmetest.Options{
		Type:  "bindings.cron",
		Keys:  metadataKeys,
		Parse: func(md sdk.Metadata) error { return New(nil).Init(context.Background(), md) },
	})
}
