package main

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

// TestREADME pins the README shape, checks every metadata key is
// documented, and parses the metadata of every ```yaml component example
// loaded through the real Component loader.
func TestREADME(t *testing.T) {
	checkREADME(t, "bindings.kafka", metadataKeys, func(md sdk.Metadata) error { _, err := parse(md); return err })
}

func checkREADME(t *testing.T, typ string, keys []string, initMD func(sdk.Metadata) error) {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	last := -1
	for _, h := range []string{"\n## Name\n", "\n## Description\n", "\n## Metadata\n", "\n## Examples\n"} {
		i := strings.Index(doc, h)
		if i < 0 || i < last {
			t.Errorf("README lacks heading %q or has it out of order", strings.TrimSpace(h))
		}
		last = i
	}
	_, table, _ := strings.Cut(doc, "\n## Metadata\n")
	table, _, _ = strings.Cut(table, "\n## ")
	if !strings.Contains(table, "| field | required | default | meaning |") {
		t.Error("README metadata table lacks the header | field | required | default | meaning |")
	}
	for _, k := range keys {
		if !strings.Contains(table, "| `"+k+"` |") {
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
		if c.Type != typ {
			t.Errorf("example %s: type %q, want %q", c.Name, c.Type, typ)
		}
		if initMD != nil {
			if err := initMD(c.Properties()); err != nil {
				t.Errorf("example %s: Init fails: %v", c.Name, err)
			}
		}
	}
}
