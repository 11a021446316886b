package statee2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// Built once by TestMain, in the release layout: binDir/outrigger and
// binDir/plugins/state-<name>, so the sidecar finds its plugins beside itself.
var (
	binDir          string
	outrigger       string
	pluginsDir      string
	sqlitePluginBin string
)

// builds maps a binary (relative to binDir) to its package.
var builds = map[string]string{
	"outrigger":                "github.com/outrigger/outrigger/proxy/cmd/outrigger",
	"plugins/state-sqlite":     "github.com/outrigger/outrigger/plugins/state/sqlite",
	"plugins/state-redis":      "github.com/outrigger/outrigger/plugins/state/redis",
	"plugins/state-postgresql": "github.com/outrigger/outrigger/plugins/state/postgresql",
}

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "state-e2e", builds, func(dir string) error {
		binDir = dir
		outrigger = filepath.Join(dir, "outrigger")
		pluginsDir = filepath.Join(dir, "plugins")
		sqlitePluginBin = filepath.Join(pluginsDir, "state-sqlite")
		return nil
	}))
}
