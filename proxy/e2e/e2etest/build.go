package e2etest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
