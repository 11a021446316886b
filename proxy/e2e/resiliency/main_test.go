package resiliencye2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
	for out, pkg := range builds {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "resiliencye2e: go build %s failed: %v\n", pkg, err)
			return 1
		}
	}
	return m.Run()
}
