package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
	cmd := exec.Command("go", "build", "-o", outriggerBin, "github.com/outrigger/outrigger/proxy/cmd/outrigger")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the outrigger binary failed:", err)
		return 1
	}
	return m.Run()
}
