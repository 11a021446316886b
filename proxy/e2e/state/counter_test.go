package statee2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// storeUnderTest is one state store the API tests run against.
type storeUnderTest struct {
	name  string // component name (the store in API paths)
	query bool   // serves the query API
}

// threeStores starts one sidecar with a state.sqlite, a state.redis and a
// state.postgresql component, named "sqlite", "redis" and "pg".
func threeStores(t *testing.T) (*sidecar, []storeUnderTest) {
	t.Helper()
	appID := e2etest.Uniq("state-e2e-")
	dir := writeComponents(t,
		sqliteComponent(t, "sqlite"),
		redisComponent(t, "redis", appID),
		pgComponent(t, "pg"))
	s := startSidecar(t, sidecarOpts{appID: appID, resources: dir})
	return s, []storeUnderTest{{name: "sqlite", query: true}, {name: "redis"}, {name: "pg", query: true}}
}

// TestETagCounter is the seed's optimistic-concurrency counter with the
// official Go SDK: 8 writers each add 1 N times (GetState, then
// SaveStateWithETag with the etag read, again on a conflict); the total must
// be exactly 8×N, on every store.
func TestETagCounter(t *testing.T) {
	t.Parallel()
	s, stores := threeStores(t)
	cl := s.Client(t)
	const writers, n = 8, 25
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			const key = "concurrent-counter"
			if err := cl.SaveState(ctx, st.name, key, []byte("0"), nil); err != nil {
				t.Fatalf("initial SaveState: %v", err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			conflicts := 0
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						c, err := increment(ctx, cl, st.name, key)
						mu.Lock()
						conflicts += c
						mu.Unlock()
						if err != nil {
							errs <- fmt.Errorf("writer %d: %w", w, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			item, err := cl.GetState(ctx, st.name, key, nil)
			if err != nil {
				t.Fatalf("final GetState: %v", err)
			}
			if got := string(item.Value); got != strconv.Itoa(writers*n) {
				t.Errorf("final counter %q, want %d (%d etag conflicts retried)", got, writers*n, conflicts)
			}
			if conflicts == 0 {
				t.Logf("no etag conflict happened: the writers did not overlap")
			}
			t.Logf("%s: %d increments, %d conflicts retried", st.name, writers*n, conflicts)
		})
	}
}

// increment adds 1 to the counter, retrying on an etag conflict (gRPC
// Aborted); it returns how many conflicts it met.
func increment(ctx context.Context, cl dapr.Client, store, key string) (int, error) {
	for conflicts := 0; ; conflicts++ {
		item, err := cl.GetState(ctx, store, key, nil)
		if err != nil {
			return conflicts, fmt.Errorf("GetState: %w", err)
		}
		if item.Etag == "" {
			return conflicts, errors.New("GetState of an existing key returned no etag")
		}
		v, err := strconv.Atoi(string(item.Value))
		if err != nil {
			return conflicts, fmt.Errorf("counter value %q: %w", item.Value, err)
		}
		err = cl.SaveStateWithETag(ctx, store, key, []byte(strconv.Itoa(v+1)), item.Etag, nil)
		if err == nil {
			return conflicts, nil
		}
		if status.Code(err) != codes.Aborted {
			return conflicts, fmt.Errorf("SaveStateWithETag: %w (want success or codes.Aborted for a conflict)", err)
		}
		if ctx.Err() != nil {
			return conflicts, ctx.Err()
		}
	}
}
