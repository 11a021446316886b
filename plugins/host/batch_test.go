package host

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
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
	hammer(t, ctx, cl, workers, rounds, func(w, r int) string { return fmt.Sprintf("w%d-r%d", w, r) })
	st := e.host.Plugins()[0]
	if st.Batches == 0 || st.BatchedCalls <= st.Batches {
		t.Errorf("after %d concurrent calls: %d batches carrying %d calls; want batches of more than one call",
			2*workers*rounds, st.Batches, st.BatchedCalls)
	}
	t.Logf("%d calls: %d batches carried %d of them", 2*workers*rounds, st.Batches, st.BatchedCalls)

	// Large values: batches stay under the plugin's 4 MiB receive limit (a
	// batch of these 600 KiB writes would otherwise pass it), and a value
	// over the batch size limit goes out as a plain call.
	big := strings.Repeat("x", 600<<10)
	hammer(t, ctx, cl, 16, 4, func(w, r int) string { return fmt.Sprintf("%s-w%d-r%d", big, w, r) })
	huge := strings.Repeat("y", 3<<20)
	hammer(t, ctx, cl, 4, 2, func(w, r int) string { return fmt.Sprintf("%s-w%d-r%d", huge, w, r) })
}

// hammer runs workers that each set and get their own key rounds times,
// checking every answer is their own latest value.
func hammer(t *testing.T, ctx context.Context, cl componentsv1.StateStoreClient, workers, rounds int, value func(w, r int) string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				key, val := fmt.Sprintf("w%d", w), value(w, r)
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
					errs <- fmt.Errorf("get %s = %d bytes, want %d (another caller's answer?)", key, len(got.GetData()), len(val))
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
}

// optsRecorder is a grpc.ClientConnInterface that keeps the call options a
// generated client passes.
type optsRecorder struct {
	grpc.ClientConnInterface
	opts []grpc.CallOption
}

func (r *optsRecorder) Invoke(_ context.Context, _ string, _, _ any, opts ...grpc.CallOption) error {
	r.opts = opts
	return nil
}

// TestGeneratedClientsAreBatchable checks that the calls the sidecar's
// generated clients make (Dapr's, and Outrigger's own, whose newer generator
// adds grpc.StaticMethod to every call) can travel in a batch, and that a
// call asking for its response header cannot.
func TestGeneratedClientsAreBatchable(t *testing.T) {
	ctx := context.Background()
	var r optsRecorder
	_, _ = ocomponentsv1.NewLockStoreClient(&r).TryLock(ctx, &ocomponentsv1.LockStoreTryLockRequest{})
	if !batchable(r.opts) {
		t.Errorf("LockStore.TryLock passes %v: not batchable", r.opts)
	}
	_, _ = componentsv1.NewStateStoreClient(&r).Get(ctx, &componentsv1.GetRequest{})
	if !batchable(r.opts) {
		t.Errorf("StateStore.Get passes %v: not batchable", r.opts)
	}
	var md metadata.MD
	_, _ = componentsv1.NewStateStoreClient(&r).Get(ctx, &componentsv1.GetRequest{}, grpc.Header(&md))
	if batchable(r.opts) {
		t.Error("a call asking for its response header was batchable")
	}
}
