package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

const (
	bigBody = 100 << 20 // 100 MiB
	rssCap  = 80 << 20  // "bounded sidecar memory"
)

// TestStreamLargeBodies sends 100 MiB A→B→app and streams 100 MiB back, and
// checks both sidecars stay below ~80 MiB resident while the bytes flow.
func TestStreamLargeBodies(t *testing.T) {
	t.Parallel()
	sa, sb := pair(t)

	check := func(t *testing.T, stop func() (map[int]int64, int)) {
		t.Helper()
		peaks, n := stop()
		for _, s := range []*sidecar{sa, sb} {
			p := peaks[s.Pid()]
			t.Logf("sidecar %s peak VmRSS %.1f MiB over %d samples", s.appID, float64(p)/(1<<20), n)
			if p == 0 {
				t.Errorf("no VmRSS sample for sidecar %s (pid %d)", s.appID, s.Pid())
			}
			if p >= rssCap {
				t.Errorf("sidecar %s peak VmRSS %.1f MiB, want < %d MiB while streaming %d MiB", s.appID, float64(p)/(1<<20), rssCap>>20, bigBody>>20)
			}
		}
	}

	t.Run("request", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		h := newHasher()
		body := io.TeeReader(dataReader(1, bigBody), h)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, sa.URL("/v1.0/invoke/b/method/hash"), body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = bigBody
		req.Header.Set("Content-Type", "application/octet-stream")
		stop := rssPeaks(sa.Pid(), sb.Pid())
		start := time.Now()
		resp, err := httpc.Do(req)
		if err != nil {
			stop()
			t.Fatalf("POST 100 MiB: %v", err)
		}
		var got struct {
			App    string `json:"app"`
			SHA256 string `json:"sha256"`
			Bytes  int64  `json:"bytes"`
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		check(t, stop)
		t.Logf("100 MiB request took %v", time.Since(start))
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("POST 100 MiB: status %d, decode: %v", resp.StatusCode, err)
		}
		if got.App != "app-b" || got.Bytes != bigBody || got.SHA256 != h.sum() {
			t.Errorf("app %q hashed %d bytes to %s; sent %d bytes hashing to %s", got.App, got.Bytes, got.SHA256, int64(bigBody), h.sum())
		}
	})

	t.Run("response", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, sa.URL("/v1.0/invoke/b/method/big?seed=2&n="+strconv.Itoa(bigBody)), nil)
		if err != nil {
			t.Fatal(err)
		}
		stop := rssPeaks(sa.Pid(), sb.Pid())
		start := time.Now()
		resp, err := httpc.Do(req)
		if err != nil {
			stop()
			t.Fatalf("GET 100 MiB: %v", err)
		}
		h := newHasher()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		check(t, stop)
		t.Logf("100 MiB response took %v", time.Since(start))
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("GET 100 MiB: status %d after %d bytes, read: %v", resp.StatusCode, n, err)
		}
		want := newHasher()
		io.Copy(want, dataReader(2, bigBody))
		if n != bigBody || h.sum() != want.sum() {
			t.Errorf("received %d bytes hashing to %s; app sent %d bytes hashing to %s", n, h.sum(), int64(bigBody), want.sum())
		}
		if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(bigBody) {
			t.Errorf("Content-Length %q, want %d (the app's) or none", cl, bigBody)
		}
	})
}

// TestStreamFlushedChunks checks that a response the app flushes in pieces
// (server-sent events) reaches the caller piece by piece, not when it ends:
// through a remote sidecar (A→b) and to A's own app (A→a).
func TestStreamFlushedChunks(t *testing.T) {
	t.Parallel()
	sa, _ := pair(t)
	for _, target := range []string{"b", "a"} {
		t.Run("to "+target, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, sa.URL("/v1.0/invoke/"+target+"/method/slow"), nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp, err := httpc.Do(req)
			if err != nil {
				t.Fatalf("GET slow: %v", err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("Content-Type %q, want text/event-stream", ct)
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			took := time.Since(start)
			if err != nil || line != "data: first\n" {
				t.Fatalf("first event: %q, %v", line, err)
			}
			if took > 1500*time.Millisecond {
				// Regression guard: the callee once filled 32 KiB frames (io.ReadFull)
				// before sending the head, and the router copied without flushing.
				t.Errorf("the first event arrived after %v; the app flushed it at once and sent the next only after 3 s (response buffered)",
					took.Round(time.Millisecond))
			}
		})
	}
}
