package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	md := sdk.Metadata{
		"connectionString":  filepath.Join(t.TempDir(), "pubsub.db"),
		"visibilityTimeout": "2s",
	}
	sdktest.ExercisePubSub(t, New, md, sdktest.RedeliveryWithin(3*time.Second), sdktest.ReadyWithin(5*time.Second))
}

func BenchmarkPubSub(b *testing.B) {
	md := sdk.Metadata{"connectionString": filepath.Join(b.TempDir(), "pubsub.db")}
	sdktest.BenchmarkPubSub(b, New, md, 8)
}
