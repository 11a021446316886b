package pubsube2e

import (
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
	os.Exit(e2etest.Main(m, "pubsub-e2e", builds, func(dir string) error {
		binDir = dir
		outrigger = filepath.Join(dir, "outrigger")
		loadBin = filepath.Join(dir, "ecommerce-load")
		return nil
	}))
}
