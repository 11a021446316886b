package host

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
)

// TestBatchingUnderLoad drives an SDK-built plugin (state-sqlite, which
// serves UnaryBatch) with many concurrent callers: calls that queue behind
// the ones in flight travel in batches, and every caller still gets exactly
// its own answer.
func TestBatchingUnderLoad(t *testing.T) {
	e := newEnv(t)
	out, err := exec.Command("go", "build", "-o", filepath.Join(e.pluginsDir, "state-sqlite"),
		"../state/sqlite").CombinedOutput()
	if err != nil {
		t.Fatalf("building plugins/state/sqlite: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := e.host.Provision(ctx, comp("statestore", "state.sqlite", "connectionString", filepath.Join(t.TempDir(), "s.db")))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if st := e.host.Plugins()[0]; !slices.Contains(st.Services, batchService) {
		t.Fatalf("plugin services %v lack %s", st.Services, batchService)
	}
	cl := componentsv1.NewStateStoreClient(c.Conn())
	const workers, rounds = 48, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				key, val := fmt.Sprintf("w%d", w), fmt.Sprintf("w%d-r%d", w, r)
				if _, err := cl.Set(ctx, &componentsv1.SetRequest{Key: key, Value: []byte(val)}); err != nil {
					errs <- fmt.Errorf("set %s: %w", key, err)
					return
				}
				got, err := cl.Get(ctx, &componentsv1.GetRequest{Key: key})
				if err != nil {
					errs <- fmt.Errorf("get %s: %w", key, err)
					return
				}
				if string(got.GetData()) != val {
					errs <- fmt.Errorf("get %s = %q, want %q (another caller's answer?)", key, got.GetData(), val)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := e.host.Plugins()[0]
	if st.Batches == 0 || st.BatchedCalls <= st.Batches {
		t.Errorf("after %d concurrent calls: %d batches carrying %d calls; want batches of more than one call",
			2*workers*rounds, st.Batches, st.BatchedCalls)
	}
	t.Logf("%d calls: %d batches carried %d of them", 2*workers*rounds, st.Batches, st.BatchedCalls)
}
