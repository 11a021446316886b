package statee2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// TestHotReload runs a sidecar with --watch and keeps writing to a state
// store while its Component file changes: a component is added, the store is
// switched to another database file, a broken file is added and then fixed.
// No request of the running traffic may fail, the changes take effect, and
// the broken file leaves the last good configuration in force.
func TestHotReload(t *testing.T) {
	s1 := sqliteComponent(t, "s1")
	dir := writeComponents(t, s1)
	sc := startSidecar(t, sidecarOpts{resources: dir, args: []string{"--watch"}})
	write := func(name string, cs ...component) {
		var docs []string
		for _, c := range cs {
			docs = append(docs, c.yaml())
		}
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil { // one event, a whole file
			t.Fatal(err)
		}
	}

	// Traffic: 4 writers on s1 for the whole test; every answer must be 204.
	var failures, writes atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := mustJSON(t, []map[string]any{{"key": "w" + string(rune('a'+w)), "value": i}})
				r, err := tryDo("POST", sc.URL("/v1.0/state/s1"), nil, body, 5*time.Second)
				writes.Add(1)
				if err != nil || r.status != 204 {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, func() string {
						if err != nil {
							return err.Error()
						}
						return string(r.body)
					}())
				}
			}
		}()
	}

	// 1. Add a component.
	write("extra.yaml", sqliteComponent(t, "s2"))
	e2etest.WaitFor(t, 10*time.Second, "s2 to be added", func() bool {
		r, err := tryDo("POST", sc.URL("/v1.0/state/s2"), nil, mustJSON(t, []map[string]any{{"key": "k", "value": "v"}}), 2*time.Second)
		return err == nil && r.status == 204
	})

	// 2. Switch s1 to a new database: the new instance serves once ready.
	marker := mustJSON(t, []map[string]any{{"key": "marker", "value": "old"}})
	if r := do(t, "POST", sc.URL("/v1.0/state/s1"), nil, marker); r.status != 204 {
		t.Fatalf("marker: %d %s", r.status, r.body)
	}
	write("components.yaml", sqliteComponent(t, "s1"))
	e2etest.WaitFor(t, 10*time.Second, "s1 to switch to the new database", func() bool {
		r, err := tryDo("GET", sc.URL("/v1.0/state/s1/marker"), nil, nil, 2*time.Second)
		return err == nil && r.status == 204 // the new file has no marker
	})

	// 3. A broken file is rejected; the last good configuration stays.
	write("broken.yaml")
	if err := os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("kind: Component\nspec: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e2etest.WaitFor(t, 10*time.Second, "the broken file to be reported", func() bool {
		return strings.Contains(sc.Out.String(), "reload rejected")
	})
	if r := do(t, "GET", sc.URL("/v1.0/state/s2/k"), nil, nil); r.status != 200 {
		t.Fatalf("after a broken file, s2 answers %d %s; want the last good configuration", r.status, r.body)
	}

	// 4. Fixing it (removing the file and s2's) applies again: s2 is gone.
	if err := os.Remove(filepath.Join(dir, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "extra.yaml")); err != nil {
		t.Fatal(err)
	}
	e2etest.WaitFor(t, 10*time.Second, "s2 to be removed", func() bool {
		r, err := tryDo("GET", sc.URL("/v1.0/state/s2/k"), nil, nil, 2*time.Second)
		return err == nil && r.status == 400
	})

	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d writes failed during reloads; first: %v", n, writes.Load(), firstFailure.Load())
	}
	if writes.Load() < 20 {
		t.Fatalf("only %d writes ran: the traffic did not overlap the reloads", writes.Load())
	}
	t.Logf("%d writes during four reloads, none failed", writes.Load())
}
