package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// outriggerBin is the binary built once by TestMain from this tree.
var outriggerBin string

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "e2e", map[string]string{"outrigger": "github.com/outrigger/outrigger/proxy/cmd/outrigger"},
		func(dir string) error {
			outriggerBin = filepath.Join(dir, "outrigger")
			return nil
		}))
}
