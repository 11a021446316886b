package resiliencye2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// Built once by TestMain, in the release layout: binDir/outrigger and
// binDir/plugins/pubsub-sqlite, so the sidecar finds its plugin beside itself.
var (
	binDir    string
	outrigger string
)

var builds = map[string]string{
	"outrigger":             "github.com/outrigger/outrigger/proxy/cmd/outrigger",
	"plugins/pubsub-sqlite": "github.com/outrigger/outrigger/plugins/pubsub/sqlite",
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "outrigger-resiliency-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "resiliencye2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	outrigger = filepath.Join(dir, "outrigger")
	if err := e2etest.Build(dir, builds); err != nil {
		fmt.Fprintln(os.Stderr, "resiliencye2e:", err)
		return 1
	}
	return m.Run()
}
