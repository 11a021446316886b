package statee2e

import (
	"fmt"
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

// plugins maps a plugin binary name to its package.
var plugins = map[string]string{
	"state-sqlite":     "github.com/outrigger/outrigger/plugins/state/sqlite",
	"state-redis":      "github.com/outrigger/outrigger/plugins/state/redis",
	"state-postgresql": "github.com/outrigger/outrigger/plugins/state/postgresql",
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "outrigger-state-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "statee2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	outrigger = filepath.Join(dir, "outrigger")
	pluginsDir = filepath.Join(dir, "plugins")
	sqlitePluginBin = filepath.Join(pluginsDir, "state-sqlite")
	builds := map[string]string{"outrigger": "github.com/outrigger/outrigger/proxy/cmd/outrigger"}
	for bin, pkg := range plugins {
		builds[filepath.Join("plugins", bin)] = pkg
	}
	if err := e2etest.Build(dir, builds); err != nil {
		fmt.Fprintln(os.Stderr, "statee2e:", err)
		return 1
	}
	return m.Run()
}
