package blockse2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// Built once by TestMain, in the release layout: binDir/outrigger and
// binDir/plugins/<kind>-<name>, so the sidecar finds its plugins beside itself.
var (
	binDir     string
	outrigger  string
	pluginsDir string
	// missing maps an optional plugin binary that could not be built to why.
	missing = map[string]string{}
)

// plugins maps a plugin binary name to its package directory (relative to
// the module root) and whether the tests can run without it.
var plugins = map[string]struct {
	dir      string
	optional bool
}{
	"state-sqlite":            {"plugins/state/sqlite", false},
	"state-redis":             {"plugins/state/redis", false},
	"pubsub-sqlite":           {"plugins/pubsub/sqlite", false},
	"secretstores-local.file": {"plugins/secretstores/local.file", false},
	"configuration-redis":     {"plugins/configuration/redis", false},
	"lock-redis":              {"plugins/lock/redis", false},
	"lock-sqlite":             {"plugins/lock/sqlite", false},
	// The bindings block is wired separately; its tests fail with the
	// reason when these are absent.
	"bindings-cron": {"plugins/bindings/cron", true},
	"bindings-http": {"plugins/bindings/http", true},
}

const module = "github.com/outrigger/outrigger/"

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "blocks-e2e", map[string]string{"outrigger": module + "proxy/cmd/outrigger"}, buildPlugins))
}

// buildPlugins builds the plugins into dir/plugins; an optional one that
// cannot be built is recorded in missing.
func buildPlugins(dir string) error {
	binDir = dir
	outrigger = filepath.Join(dir, "outrigger")
	pluginsDir = filepath.Join(dir, "plugins")
	root, err := e2etest.ModuleRoot()
	if err != nil {
		return err
	}
	for bin, p := range plugins {
		if _, err := os.Stat(filepath.Join(root, p.dir, "main.go")); err != nil && p.optional {
			missing[bin] = fmt.Sprintf("%s/main.go does not exist yet", p.dir)
			continue
		}
		if err := e2etest.BuildOne(filepath.Join(pluginsDir, bin), module+p.dir); err != nil {
			if p.optional {
				missing[bin] = err.Error()
				continue
			}
			return err
		}
	}
	return nil
}

// needPlugin fails the test when an optional plugin could not be built.
func needPlugin(t *testing.T, bin string) {
	t.Helper()
	if why, ok := missing[bin]; ok {
		t.Fatalf("plugin %s is not available, so this building block cannot be tested end to end: %s", bin, why)
	}
}
