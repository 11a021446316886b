package e2etest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Build runs `go build -o dir/<out> <pkg>` for every out → pkg of builds
// (out may hold a slash, e.g. "plugins/state-redis"). It stops at the first
// failure; the error carries the compiler's output.
func Build(dir string, builds map[string]string) error {
	for out, pkg := range builds {
		if err := BuildOne(filepath.Join(dir, out), pkg); err != nil {
			return err
		}
	}
	return nil
}

// BuildOne runs `go build -o out pkg`.
func BuildOne(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = os.Stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, stderr.String())
	}
	return nil
}

// ModuleRoot is the directory holding go.mod (tests run in their package
// directory).
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the module (go env GOMOD = %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}

// Main is the body of an e2e package's TestMain: it makes a temp dir,
// builds builds into it (see Build), calls setup with the dir (if set; it
// may build more or set the package's binary paths), runs the tests and
// removes the dir. name prefixes failure messages. It returns the exit code
// for os.Exit.
func Main(m *testing.M, name string, builds map[string]string, setup func(dir string) error) int {
	dir, err := os.MkdirTemp("", "outrigger-"+name+"-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: temp dir: %v\n", name, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := Build(dir, builds); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	if setup != nil {
		if err := setup(dir); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			return 1
		}
	}
	return m.Run()
}
