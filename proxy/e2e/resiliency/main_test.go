package resiliencye2e

import (
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
	os.Exit(e2etest.Main(m, "resiliency-e2e", builds, func(dir string) error {
		binDir = dir
		outrigger = filepath.Join(dir, "outrigger")
		return nil
	}))
}
