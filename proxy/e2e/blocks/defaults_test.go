package blockse2e

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// TestInitDefaults: the components `outrigger init` writes give a sidecar
// state, pub/sub, secrets and lock with nothing installed, and two sidecars
// sharing the home share the lock file.
func TestInitDefaults(t *testing.T) {
	home := t.TempDir()
	out, err := exec.Command(outrigger, "init", "--home", home).CombinedOutput()
	if err != nil {
		t.Fatalf("outrigger init: %v\n%s", err, out)
	}
	appID := e2etest.Uniq("defaults-")
	o := sidecarOpts{appID: appID, home: home, resources: filepath.Join(home, "components"), config: filepath.Join(home, "config.yaml")}
	sc1, sc2 := startSidecar(t, o), startSidecar(t, o)

	r := do(t, http.MethodGet, sc1.URL("/v1.0/metadata"), nil)
	var md struct {
		Components []struct{ Name, Type string } `json:"components"`
	}
	decode(t, "metadata", r, &md)
	var types []string
	for _, c := range md.Components {
		types = append(types, c.Name+"="+c.Type)
	}
	slices.Sort(types)
	want := []string{"localsecretstore=secretstores.local.file", "lockstore=lock.sqlite", "pubsub=pubsub.sqlite", "statestore=state.sqlite"}
	if !slices.Equal(types, want) {
		t.Errorf("components of a sidecar on the init defaults = %v, want %v", types, want)
	}

	c1, c2 := sc1.Client(t), sc2.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sec, err := c1.GetSecret(ctx, "localsecretstore", "example-secret", nil)
	if err != nil || sec["example-secret"] == "" {
		t.Errorf("GetSecret(example-secret) from the example secrets.json = %v, %v", sec, err)
	}
	if sec, err := c1.GetSecret(ctx, "localsecretstore", "database:password", nil); err != nil || sec["database:password"] == "" {
		t.Errorf("GetSecret(database:password) = %v, %v", sec, err)
	}

	if err := c1.SaveState(ctx, "statestore", "k", []byte("v"), nil); err != nil {
		t.Errorf("SaveState on the default store: %v", err)
	} else if it, err := c2.GetState(ctx, "statestore", "k", nil); err != nil || string(it.Value) != "v" {
		t.Errorf("GetState through the other sidecar sharing state.db = %+v, %v", it, err)
	}
	if err := c1.PublishEvent(ctx, "pubsub", "orders", []byte(`{"id":1}`)); err != nil {
		t.Errorf("PublishEvent on the default pub/sub: %v", err)
	}

	got1, err1 := c1.TryLockAlpha1(ctx, "lockstore", &dapr.LockRequest{ResourceID: "job", LockOwner: "one", ExpiryInSeconds: 30})
	got2, err2 := c2.TryLockAlpha1(ctx, "lockstore", &dapr.LockRequest{ResourceID: "job", LockOwner: "two", ExpiryInSeconds: 30})
	if err1 != nil || err2 != nil || !got1.Success || got2.Success {
		t.Errorf("TryLock on the default lock store from two sidecars = %+v %v / %+v %v, want exactly the first to win", got1, err1, got2, err2)
	}
}
