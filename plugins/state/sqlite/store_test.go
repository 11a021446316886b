package main

import (
	"path/filepath"
	"testing"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

func TestConformanceFile(t *testing.T) {
	sdktest.ExerciseStateStore(t, New, sdk.Metadata{
		"connectionString": filepath.Join(t.TempDir(), "state.db"),
	})
}

func TestConformanceMemory(t *testing.T) {
	sdktest.ExerciseStateStore(t, New, sdk.Metadata{"connectionString": ":memory:", "tableName": "other_state"})
}
