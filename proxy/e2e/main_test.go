package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// outriggerBin is the binary built once by TestMain from this tree.
var outriggerBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "outrigger-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	outriggerBin = filepath.Join(dir, "outrigger")
	if err := e2etest.BuildOne(outriggerBin, "github.com/outrigger/outrigger/proxy/cmd/outrigger"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the outrigger binary failed:", err)
		return 1
	}
	return m.Run()
}
