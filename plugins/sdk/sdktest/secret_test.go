package sdktest_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

// mapSecrets is a correct secret store; the broken variants break one
// promise each.
type mapSecrets struct {
	data  map[string]map[string]string
	multi bool
	// defects
	emptyOnMissing bool // answers a missing secret with no error
	bulkDrops      bool // BulkGet forgets a secret
	alwaysMulti    bool // advertises the feature regardless of config
	initErr        error
}

func (s *mapSecrets) Init(_ context.Context, md sdk.Metadata) error {
	if s.initErr != nil {
		return s.initErr
	}
	if md["fail"] == "true" {
		return fmt.Errorf("metadata fail=true")
	}
	s.multi = md["multi"] == "true"
	return nil
}

func (s *mapSecrets) MultipleKeyValuesPerSecret() bool { return s.multi || s.alwaysMulti }

func (s *mapSecrets) Get(_ context.Context, name string, _ map[string]string) (map[string]string, error) {
	v, ok := s.data[name]
	if !ok {
		if s.emptyOnMissing {
			return map[string]string{}, nil
		}
		return nil, fmt.Errorf("secret %q: %w", name, sdk.ErrSecretNotFound)
	}
	return maps.Clone(v), nil
}

func (s *mapSecrets) BulkGet(context.Context, map[string]string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for k, v := range s.data {
		if s.bulkDrops && k == "b" {
			continue
		}
		out[k] = maps.Clone(v)
	}
	return out, nil
}

func newSecrets() *mapSecrets {
	return &mapSecrets{data: map[string]map[string]string{
		"a": {"a": "1"},
		"b": {"user": "u", "pass": "p"},
	}}
}

var secretCase = sdktest.SecretStoreCase{
	Metadata:    sdk.Metadata{"multi": "true"},
	Secrets:     map[string]map[string]string{"a": {"a": "1"}, "b": {"user": "u", "pass": "p"}},
	MultiValued: true,
	BadMetadata: sdk.Metadata{"fail": "true"},
}

func TestCorrectSecretStorePasses(t *testing.T) {
	sdktest.ExerciseSecretStore(t, func() sdk.SecretStore { return newSecrets() }, secretCase)
}

func TestCorrectSecretStoreSingleValued(t *testing.T) {
	c := secretCase
	c.Metadata, c.MultiValued = sdk.Metadata{}, false
	sdktest.ExerciseSecretStore(t, func() sdk.SecretStore { return newSecrets() }, c)
}

var brokenSecretStores = map[string]struct {
	factory  func() sdk.SecretStore
	wantFail string
}{
	"empty-on-missing": {func() sdk.SecretStore { s := newSecrets(); s.emptyOnMissing = true; return s }, "--- FAIL: TestBrokenSecretStoreHelper/missing_secret"},
	"bulk-drops":       {func() sdk.SecretStore { s := newSecrets(); s.bulkDrops = true; return s }, "--- FAIL: TestBrokenSecretStoreHelper/bulk"},
	"lying-feature":    {func() sdk.SecretStore { s := newSecrets(); s.alwaysMulti = true; return s }, "--- FAIL: TestBrokenSecretStoreHelper/features"},
}

const brokenSecretEnv = "SDKTEST_BROKEN_SECRET_STORE"

// TestBrokenSecretStoreHelper runs the kit on one broken store; it only does
// anything when TestKitCatchesBrokenSecretStores starts it in a child process.
func TestBrokenSecretStoreHelper(t *testing.T) {
	name := os.Getenv(brokenSecretEnv)
	if name == "" {
		t.Skip("helper: runs only as a child of TestKitCatchesBrokenSecretStores")
	}
	c := secretCase
	c.Metadata, c.MultiValued = sdk.Metadata{}, false
	sdktest.ExerciseSecretStore(t, brokenSecretStores[name].factory, c)
}

func TestKitCatchesBrokenSecretStores(t *testing.T) {
	for name, bs := range brokenSecretStores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenSecretStoreHelper$", "-test.v")
			cmd.Env = append(os.Environ(), brokenSecretEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("conformance passed a broken secret store (%s):\n%s", name, out)
			}
			if !strings.Contains(string(out), bs.wantFail) {
				t.Fatalf("want %q in the output:\n%s", bs.wantFail, out)
			}
		})
	}
}
