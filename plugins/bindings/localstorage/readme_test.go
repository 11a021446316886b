package main

import (
	"testing"

	"github.com/outrigger/outrigger/plugins/internal/readmetest"
)

// TestREADME pins the README shape, checks every metadata key is
// documented, and loads every ```yaml component example through the real
// Component loader (see package readmetest).
func TestREADME(t *testing.T) {
	readmetest.Check(t, readmetest.Options{
		Type: "bindings.localstorage",
		Keys: metadataKeys,
	})
}
