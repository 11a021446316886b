package statee2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// outcome is one API call made during the kill test.
type outcome struct {
	op      string // "save" or "get"
	key     string
	value   string
	start   time.Time
	took    time.Duration
	status  int
	body    []byte
	callErr error // no HTTP answer at all
}

// TestPluginKilledUnderLoad kills the state-sqlite plugin (SIGKILL) while
// writers and a reader hammer the sidecar: the host restarts it (new pid,
// restarts ≥ 1), every call made meanwhile fails in under a second with
// Dapr's error JSON naming the plugin, and every write that was
// acknowledged with 204 is readable afterwards.
func TestPluginKilledUnderLoad(t *testing.T) {
	t.Parallel()
	s := startSidecar(t, sidecarOpts{resources: writeComponents(t, sqliteComponent(t, "store"))})
	base := s.URL("/v1.0/state/store")
	before := s.plugin(t, "state-sqlite")
	if before.PID <= 0 {
		t.Fatalf("state-sqlite has no pid in metadata: %+v", before)
	}

	var (
		mu       sync.Mutex
		outcomes []outcome
		acked    atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	record := func(o outcome) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
		if o.op == "save" && o.status == http.StatusNoContent {
			acked.Add(1)
		}
	}
	call := func(op, method, url, key, value string, body []byte) {
		start := time.Now()
		r, err := tryDo(method, url, nil, body, 10*time.Second)
		record(outcome{op: op, key: key, value: value, start: start, took: time.Since(start), status: r.status, body: r.body, callErr: err})
	}
	const writers = 4
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				value := fmt.Sprintf(`{"writer":%d,"seq":%d}`, w, i)
				body := []byte(`[{"key":"` + key + `","value":` + value + `}]`)
				call("save", http.MethodPost, base, key, value, body)
			}
		}()
	}
	wg.Add(1)
	go func() { // a reader, so reads are seen failing fast too
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			call("get", http.MethodGet, base+"/w0-0", "w0-0", "", nil)
		}
	}()
	defer func() { // stop the load however the test ends
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	e2etest.WaitFor(t, 10*time.Second, "100 acknowledged writes before the kill", func() bool { return acked.Load() >= 100 })
	killed := time.Now()
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", before.PID, err)
	}
	var after pluginStatus
	e2etest.WaitFor(t, 10*time.Second, "the plugin to be restarted with a new pid", func() bool {
		after = s.plugin(t, "state-sqlite")
		return after.Restarts >= 1 && after.PID > 0 && after.PID != before.PID
	})
	ackedAtRestart := acked.Load()
	e2etest.WaitFor(t, 10*time.Second, "100 more acknowledged writes after the restart", func() bool {
		return acked.Load() >= ackedAtRestart+100
	})
	close(stop)
	wg.Wait()
	t.Logf("plugin before %+v, after %+v", before, after)

	// Judge every call.
	var firstAckAfterKill time.Duration = -1
	failed := map[string]int{}
	sample := ""
	for _, o := range outcomes {
		switch {
		case o.callErr != nil:
			t.Errorf("%s %s got no answer after %v: %v (the sidecar must answer, never hang or drop)", o.op, o.key, o.took.Round(time.Millisecond), o.callErr)
		case o.status == http.StatusNoContent || o.status == http.StatusOK:
			if o.op == "save" && o.start.After(killed) && (firstAckAfterKill < 0 || o.start.Add(o.took).Sub(killed) < firstAckAfterKill) {
				firstAckAfterKill = o.start.Add(o.took).Sub(killed)
			}
		default:
			failed[o.op]++
			if sample == "" {
				sample = fmt.Sprintf("%s: %d %s", o.op, o.status, o.body)
			}
			if o.took >= time.Second {
				t.Errorf("%s %s failed after %v, want < 1s (fail fast while the plugin is down)", o.op, o.key, o.took.Round(time.Millisecond))
			}
			var e daprError
			if err := json.Unmarshal(o.body, &e); err != nil || e.ErrorCode == "" {
				t.Errorf("%s %s failed with %d %q: not Dapr's error JSON", o.op, o.key, o.status, o.body)
				continue
			}
			want := map[string]string{"save": "ERR_STATE_SAVE", "get": "ERR_STATE_GET"}[o.op]
			if o.status != http.StatusInternalServerError || e.ErrorCode != want {
				t.Errorf("%s %s failed with %d %s, want 500 %s: %s", o.op, o.key, o.status, e.ErrorCode, want, e.Message)
			}
			if !strings.Contains(e.Message, "state-sqlite") {
				t.Errorf("%s %s error message does not name the plugin state-sqlite: %q", o.op, o.key, e.Message)
			}
		}
	}
	t.Logf("%d calls, %d acknowledged writes, failed during the outage: %v (e.g. %s); first write acknowledged %v after the kill",
		len(outcomes), acked.Load(), failed, sample, firstAckAfterKill.Round(time.Millisecond))
	if firstAckAfterKill < 0 || firstAckAfterKill > 2*time.Second {
		t.Errorf("writes resumed %v after the kill, want within 2s (restart and re-Init)", firstAckAfterKill.Round(time.Millisecond))
	}

	// No acknowledged write is lost.
	var keys []string
	want := map[string]string{}
	for _, o := range outcomes {
		if o.op == "save" && o.status == http.StatusNoContent {
			keys = append(keys, o.key)
			want[o.key] = o.value
		}
	}
	lost := 0
	for i := 0; i < len(keys); i += 200 {
		chunk := keys[i:min(i+200, len(keys))]
		r := do(t, http.MethodPost, base+"/bulk", nil, mustJSON(t, map[string]any{"keys": chunk, "parallelism": 8}))
		var items []struct {
			Key   string          `json:"key"`
			Data  json.RawMessage `json:"data"`
			Error string          `json:"error"`
		}
		if err := json.Unmarshal(r.body, &items); r.status != http.StatusOK || err != nil {
			t.Fatalf("bulk get of acknowledged keys: %d %s (%v)", r.status, r.body, err)
		}
		for _, it := range items {
			if string(it.Data) != want[it.Key] {
				lost++
				if lost <= 10 {
					t.Errorf("acknowledged write %s = %q (error %q), want %s", it.Key, it.Data, it.Error, want[it.Key])
				}
			}
		}
		if len(items) != len(chunk) {
			t.Errorf("bulk get of %d keys returned %d items", len(chunk), len(items))
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost", lost, len(keys))
	}
}
