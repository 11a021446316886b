package pubsube2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// Built once by TestMain, in the release layout: binDir/outrigger and
// binDir/plugins/pubsub-<name>, so the sidecar finds its plugins beside
// itself; loadBin is the examples/ecommerce load checker.
var (
	binDir    string
	outrigger string
	loadBin   string
)

var builds = map[string]string{
	"outrigger":             "github.com/outrigger/outrigger/proxy/cmd/outrigger",
	"plugins/pubsub-sqlite": "github.com/outrigger/outrigger/plugins/pubsub/sqlite",
	"plugins/pubsub-redis":  "github.com/outrigger/outrigger/plugins/pubsub/redis",
	"ecommerce-load":        "github.com/outrigger/outrigger/examples/ecommerce/load",
}

func TestMain(m *testing.M) {
	if os.Getenv(appModeEnv) != "" {
		os.Exit(runChildApp())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "outrigger-pubsub-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pubsube2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	outrigger = filepath.Join(dir, "outrigger")
	loadBin = filepath.Join(dir, "ecommerce-load")
	if err := e2etest.Build(dir, builds); err != nil {
		fmt.Fprintln(os.Stderr, "pubsube2e:", err)
		return 1
	}
	return m.Run()
}
