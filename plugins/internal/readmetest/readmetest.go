package readmetest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/proxy/resources"
)

// Options are the plugin-specific inputs of Check.
type Options struct {
	// Type is the component type every example must declare, e.g. "state.redis".
	Type string
	// Keys are the metadata keys the plugin reads; each must be documented
	// in the README's Metadata section.
	Keys []string
	// Parse receives the metadata of every example component and returns
	// the plugin's verdict on it (its metadata parser, or a fresh Init).
	// Nil skips this step.
	Parse func(sdk.Metadata) error
	// SharedRows accepts a key written anywhere in the Metadata section
	// (e.g. "| `maxRetries` (alias `redisMaxRetries`) |"), for READMEs that
	// document aliases or several keys in one row. By default each key
	// needs its own "| `key` |" row.
	SharedRows bool
}

// headings are the README sections, in the order they must appear.
var headings = [...]string{"\n## Name\n", "\n## Description\n", "\n## Metadata\n", "\n## Examples\n"}

// tableHeader is the header of the Metadata table.
const tableHeader = "| field | required | default | meaning |"

// Check verifies the README.md in the current directory as described in
// the package documentation, reporting every failure on t.
func Check(t testing.TB, o Options) {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	last := -1
	for _, h := range headings {
		i := strings.Index(doc, h)
		if i < 0 || i < last {
			t.Errorf("README lacks heading %q or has it out of order", strings.TrimSpace(h))
		}
		last = i
	}
	_, table, _ := strings.Cut(doc, "\n## Metadata\n")
	table, _, _ = strings.Cut(table, "\n## ")
	if !strings.Contains(table, tableHeader) {
		t.Error("README metadata table lacks the header " + tableHeader)
	}
	for _, k := range o.Keys {
		want := "| `" + k + "` |"
		if o.SharedRows {
			want = "`" + k + "`"
		}
		if !strings.Contains(table, want) {
			t.Errorf("README metadata table does not document %s", k)
		}
	}
	blocks := strings.Split(doc, "```yaml component\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("README lacks a ```yaml component block")
	}
	dir := t.TempDir()
	for i, blk := range blocks {
		blk, _, _ = strings.Cut(blk, "```")
		if err := os.WriteFile(filepath.Join(dir, "example"+strconv.Itoa(i)+".yaml"), []byte(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set, err := resources.Load(context.Background(), []string{dir}, "readme-app", nil)
	if err != nil {
		t.Fatalf("loading the README examples: %v", err)
	}
	if len(set.Warnings) > 0 {
		t.Errorf("README examples load with warnings: %v", set.Warnings)
	}
	if len(set.Components) != len(blocks) {
		t.Fatalf("README has %d examples, loader found %d components", len(blocks), len(set.Components))
	}
	for _, c := range set.Components {
		if c.Type != o.Type {
			t.Errorf("example %s: type %q, want %q", c.Name, c.Type, o.Type)
		}
		if o.Parse != nil {
			if err := o.Parse(c.Properties()); err != nil {
				t.Errorf("example %s: %s rejects its metadata: %v", c.Name, o.Type, err)
			}
		}
	}
}
