package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outrigger/outrigger/proxy/resources"
)

// TestInitWritesEveryEmbeddedDefault loads what init wrote through the real
// resources loader: state, pub/sub, secrets and lock, all backed by files
// under the home, plus an example secrets.json the secret store can read.
func TestInitWritesEveryEmbeddedDefault(t *testing.T) {
	home := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"init", "--home", home}, &out, &errOut); code != 0 {
		t.Fatalf("init: %s", errOut.String())
	}
	data := filepath.Join(home, "data")
	set, err := resources.Load(context.Background(), []string{filepath.Join(home, "components")}, "anyapp", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("load the written components: %v", err)
	}
	if len(set.Warnings) > 0 {
		t.Errorf("the written components load with warnings: %v", set.Warnings)
	}
	want := []struct {
		name, typ string
		md        map[string]string
	}{
		{"statestore", "state.sqlite", map[string]string{"connectionString": filepath.Join(data, "state.db"), "actorStateStore": "true"}},
		{"pubsub", "pubsub.sqlite", map[string]string{"connectionString": filepath.Join(data, "pubsub.db")}},
		{"localsecretstore", "secretstores.local.file", map[string]string{"secretsFile": filepath.Join(home, "secrets.json"), "nestedSeparator": ":"}},
		{"lockstore", "lock.sqlite", map[string]string{"connectionString": filepath.Join(data, "locks.db")}},
	}
	got := map[string]resources.Component{}
	for _, c := range set.Components {
		got[c.Name] = c
	}
	if len(got) != len(want) {
		t.Errorf("init wrote %d components, want %d: %v", len(got), len(want), set.Components)
	}
	for _, w := range want {
		c, ok := got[w.name]
		if !ok {
			t.Errorf("no component %q written", w.name)
			continue
		}
		if c.Type != w.typ {
			t.Errorf("component %q: type %q, want %q", w.name, c.Type, w.typ)
		}
		props := c.Properties()
		for k, v := range w.md {
			if props[k] != v {
				t.Errorf("component %q: metadata %s = %q, want %q", w.name, k, props[k], v)
			}
		}
	}
	if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
		t.Errorf("data directory %s not created: %v", data, err)
	}
	secretsPath := filepath.Join(home, "secrets.json")
	b, err := os.ReadFile(secretsPath)
	if err != nil {
		t.Fatalf("example secrets.json: %v", err)
	}
	var secrets map[string]any
	if err := json.Unmarshal(b, &secrets); err != nil || len(secrets) == 0 {
		t.Errorf("example secrets.json is not a non-empty JSON object (%v):\n%s", err, b)
	}
	if fi, err := os.Stat(secretsPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("secrets.json mode %v: readable by others", fi.Mode().Perm())
	}
	for _, f := range []string{"secretstore.yaml", "lockstore.yaml"} {
		if !strings.Contains(out.String(), "wrote   "+filepath.Join(home, "components", f)) {
			t.Errorf("init output does not report %s:\n%s", f, out.String())
		}
	}
}

// TestInitKeepsFiles: a second init changes nothing the user edited; --force
// rewrites the component files but never the user's secrets.json.
func TestInitKeepsFiles(t *testing.T) {
	home := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"init", "--home", home}, &out, &errOut); code != 0 {
		t.Fatalf("init: %s", errOut.String())
	}
	lockPath := filepath.Join(home, "components", "lockstore.yaml")
	secretsPath := filepath.Join(home, "secrets.json")
	for _, p := range []string{lockPath, secretsPath} {
		if err := os.WriteFile(p, []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	out.Reset()
	if code := run(context.Background(), []string{"init", "--home", home}, &out, &errOut); code != 0 {
		t.Fatalf("second init: %s", errOut.String())
	}
	for _, p := range []string{lockPath, secretsPath} {
		if b, _ := os.ReadFile(p); string(b) != "mine" {
			t.Errorf("second init overwrote %s: %q", p, b)
		}
		if !strings.Contains(out.String(), "kept    "+p) {
			t.Errorf("second init does not report keeping %s:\n%s", p, out.String())
		}
	}

	out.Reset()
	if code := run(context.Background(), []string{"init", "--home", home, "--force"}, &out, &errOut); code != 0 {
		t.Fatalf("init --force: %s", errOut.String())
	}
	if b, _ := os.ReadFile(lockPath); !strings.Contains(string(b), "type: lock.sqlite") {
		t.Errorf("init --force did not rewrite lockstore.yaml: %q", b)
	}
	if b, _ := os.ReadFile(secretsPath); string(b) != "mine" {
		t.Errorf("init --force overwrote the user's secrets.json: %q", b)
	}
}
