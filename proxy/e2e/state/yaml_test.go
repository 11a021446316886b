package statee2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const goodDoc = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: good
spec:
  type: state.sqlite
  version: v1
  metadata:
  - name: connectionString
    value: ":memory:"
`

// TestBrokenComponentYAML: for each broken resources folder the sidecar exits
// non-zero, and its output names the file (and the line, where the fault has
// one) and says what is wrong.
func TestBrokenComponentYAML(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		files map[string]string
		want  []string // regexps that must all match the output; "{dir}" is the resources folder
	}{
		{
			name: "bad YAML",
			files: map[string]string{"bad.yaml": goodDoc + "---\n" + `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: broken
spec:
  type: state.sqlite
  metadata: [ {name: a, value: b
`},
			// The unclosed flow sequence is on line 18; the YAML parser counts
			// from the previous line's end, so 17 or 18 both name it.
			want: []string{`{dir}/bad\.yaml: invalid YAML: .*line 1[78]:`},
		},
		{
			name:  "missing spec.type",
			files: map[string]string{"notype.yaml": goodDoc + "---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: typeless\nspec:\n  version: v1\n"},
			want:  []string{`{dir}/notype\.yaml:12\b`, "typeless", `spec\.type`},
		},
		{
			name: "duplicate name",
			files: map[string]string{
				"a.yaml": goodDoc,
				"b.yaml": strings.Replace(goodDoc, "name: good", "name: other", 1) + "---\n" + goodDoc,
			},
			want: []string{`{dir}/b\.yaml:12\b.*duplicate.*"good".*{dir}/a\.yaml:1\b`},
		},
		{
			name: "unknown type",
			files: map[string]string{"unknown.yaml": strings.Replace(
				strings.Replace(goodDoc, "state.sqlite", "state.nosuch", 1), "  version: v1\n", "  version: v1\n  initTimeout: 1s\n", 1)},
			want: []string{`{dir}/unknown\.yaml:1\b`, `state\.nosuch`, `available:.*state\.sqlite`, `available:.*state\.redis`, `available:.*state\.postgresql`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for f, body := range c.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := launchSidecar(t, sidecarOpts{resources: dir})
			select {
			case <-s.Done():
			case <-time.After(20 * time.Second):
				t.Fatalf("the sidecar did not exit within 20s with a broken resources folder; output:\n%s", s.Out)
			}
			exitErr, ok := s.Err().(*exec.ExitError)
			if !ok || exitErr.ExitCode() == 0 {
				t.Errorf("sidecar exit: %v, want a non-zero exit status", s.Err())
			}
			out := s.Out.String()
			for _, w := range c.want {
				w = strings.ReplaceAll(w, "{dir}", regexp.QuoteMeta(dir))
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
