package pubsube2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
	for out, pkg := range builds {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "pubsube2e: go build %s failed: %v\n", pkg, err)
			return 1
		}
	}
	return m.Run()
}
