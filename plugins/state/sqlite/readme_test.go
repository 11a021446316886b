package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADME pins the README shape the plugin catalog relies on and that
// every metadata field the store reads is documented.
func TestREADME(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, h := range []string{"\n## Name\n", "\n## Description\n", "\n## Metadata\n", "\n## Examples\n"} {
		if !strings.Contains(doc, h) {
			t.Errorf("README lacks heading %q", strings.TrimSpace(h))
		}
	}
	if !strings.Contains(doc, "| field | required | default | meaning |") {
		t.Error("README metadata table lacks the header | field | required | default | meaning |")
	}
	for _, f := range []string{"connectionString", "tableName", "metadataTableName", "timeout", "cleanupInterval", "busyTimeout", "disableWAL"} {
		if !strings.Contains(doc, "| `"+f+"` |") {
			t.Errorf("README metadata table lacks a row for %s", f)
		}
	}
	_, block, ok := strings.Cut(doc, "```yaml component\n")
	if !ok {
		t.Fatal("README lacks a ```yaml component block")
	}
	block, _, _ = strings.Cut(block, "```")
	if !strings.Contains(block, "kind: Component") || !strings.Contains(block, "type: state.sqlite") {
		t.Errorf("example Component YAML is not a state.sqlite Component:\n%s", block)
	}
}
