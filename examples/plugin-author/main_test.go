package main

import (
	"testing"

	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

// The conformance kit serves the store through the SDK over gRPC and checks
// every capability it advertises.
func TestConformance(t *testing.T) {
	sdktest.ExerciseStateStore(t, New, nil)
}
