package host

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
)

// TestRealSQLitePlugin runs the in-tree state-sqlite plugin (built with the
// Outrigger SDK) under the host: provision, use, kill -9, and find the data
// again through the restarted, re-Init'ed plugin.
func TestRealSQLitePlugin(t *testing.T) {
	e := newEnv(t)
	out, err := exec.Command("go", "build", "-o", filepath.Join(e.pluginsDir, "state-sqlite"),
		"../state/sqlite").CombinedOutput()
	if err != nil {
		t.Fatalf("building plugins/state/sqlite: %v\n%s", err, out)
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "state.db")
	c, err := e.host.Provision(ctx, comp("statestore", "state.sqlite", "connectionString", db))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	for _, f := range []string{"ETAG", "TRANSACTIONAL"} {
		if !c.HasFeature(f) {
			t.Errorf("features %v lack %s", c.Features(), f)
		}
	}
	if err := setGet(ctx, c, "order-1", `{"id":1}`); err != nil {
		t.Fatal(err)
	}
	pid := e.host.Plugins()[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cl := componentsv1.NewStateStoreClient(c.Conn())
	waitFor(t, 2*time.Second, "the restarted plugin to serve the stored key", func() bool {
		resp, err := cl.Get(ctx, &componentsv1.GetRequest{Key: "order-1"})
		return err == nil && string(resp.GetData()) == `{"id":1}`
	})
	if p := e.host.Plugins()[0]; p.PID == pid || p.Restarts < 1 {
		t.Errorf("plugin status after kill: %+v", p)
	}
}
