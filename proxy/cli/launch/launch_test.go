package launch

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe bytes.Buffer for capturing console output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func sh(script string, console *Console, prefix string) Cmd {
	w := NewLineWriter(console, prefix, nil)
	return Cmd{Path: "/bin/sh", Args: []string{"-c", script}, Stdout: w, Stderr: w}
}

// A sidecar stand-in that says when it starts and when it is stopped.
const politeSidecar = `echo up; trap 'echo stopping; exit 0' TERM; while :; do sleep 0.02; done`

func TestAppExitStopsSidecarAndReturnsAppCode(t *testing.T) {
	out := &syncBuffer{}
	con := NewConsole(out)
	s := &Supervisor{Grace: 5 * time.Second}
	code, res := s.Run(context.Background(), []Pair{{
		Name:    "orders",
		Sidecar: sh(politeSidecar, con, "== SIDECAR(orders) == "),
		// Give the sidecar's trap a moment to be installed before the app exits.
		App: ptr(sh(`sleep 0.2; echo hello; printf 'no newline'; exit 3`, con, "== APP == ")),
	}})
	if code != 3 || res[0].Code != 3 || res[0].Err != nil {
		t.Fatalf("code = %d, result = %+v; want 3 and no error", code, res[0])
	}
	got := out.String()
	for _, want := range []string{"== APP == hello\n", "== APP == no newline\n", "== SIDECAR(orders) == up\n", "== SIDECAR(orders) == stopping\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q; got:\n%s", want, got)
		}
	}
}

func TestCancelStopsBoth(t *testing.T) {
	out := &syncBuffer{}
	con := NewConsole(out)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{Grace: 5 * time.Second}
	var started sync.WaitGroup
	started.Add(1)
	go func() { started.Wait(); time.Sleep(200 * time.Millisecond); cancel() }()
	start := time.Now()
	code, res := s.Run(ctx, []Pair{{
		Name:      "a",
		Sidecar:   sh(politeSidecar, con, "S "),
		App:       ptr(sh(`trap 'echo app-stopping; exit 0' TERM; while :; do sleep 0.02; done`, con, "A ")),
		OnStarted: func(context.Context, int, int) { started.Done() },
	}})
	if code != 0 || res[0].Err != nil {
		t.Fatalf("code = %d, result = %+v; want clean stop", code, res[0])
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("stop took %s; processes were not stopped by SIGTERM", d)
	}
	got := out.String()
	if !strings.Contains(got, "S stopping\n") || !strings.Contains(got, "A app-stopping\n") {
		t.Fatalf("both should have been stopped with SIGTERM; output:\n%s", got)
	}
}

func TestStubbornProcessIsKilledAfterGrace(t *testing.T) {
	s := &Supervisor{Grace: 300 * time.Millisecond}
	start := time.Now()
	code, res := s.Run(context.Background(), []Pair{{
		Name:    "a",
		Sidecar: sh(`trap '' TERM; echo up; while :; do sleep 0.02; done`, nil, ""),
		App:     ptr(sh(`sleep 0.1; exit 0`, nil, "")),
	}})
	if code != 0 || res[0].Err != nil {
		t.Fatalf("code = %d, result = %+v", code, res[0])
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("stubborn sidecar not killed after the grace period (took %s)", d)
	}
}

func TestSidecarDeathStopsApp(t *testing.T) {
	out := &syncBuffer{}
	con := NewConsole(out)
	s := &Supervisor{Grace: 5 * time.Second}
	code, res := s.Run(context.Background(), []Pair{{
		Name:    "a",
		Sidecar: sh(`sleep 0.3; echo crash; exit 7`, con, "S "),
		App:     ptr(sh(`trap 'echo app-stopping; exit 0' TERM; while :; do sleep 0.02; done`, con, "A ")),
	}})
	if code != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "exit status 7") {
		t.Fatalf("code = %d, result = %+v; want 1 and an error naming exit status 7", code, res[0])
	}
	if !strings.Contains(out.String(), "A app-stopping") {
		t.Fatalf("app not stopped; output:\n%s", out.String())
	}
}

func TestReadyGatesAppStart(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "ready")
	out := &syncBuffer{}
	con := NewConsole(out)
	s := &Supervisor{Grace: 5 * time.Second}
	code, res := s.Run(context.Background(), []Pair{{
		Name:    "a",
		Sidecar: sh(`sleep 0.3; touch "`+flag+`"; `+politeSidecar, con, "S "),
		Ready: func(ctx context.Context) error {
			for {
				if _, err := os.Stat(flag); err == nil {
					return nil
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
		},
		App: ptr(sh(`test -e "`+flag+`" && echo saw-ready`, con, "A ")),
	}})
	if code != 0 || res[0].Err != nil {
		t.Fatalf("code = %d, result = %+v", code, res[0])
	}
	if !strings.Contains(out.String(), "A saw-ready") {
		t.Fatalf("app started before the sidecar was ready; output:\n%s", out.String())
	}
}

func TestSidecarExitBeforeReady(t *testing.T) {
	s := &Supervisor{Grace: time.Second}
	never := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	done := make(chan struct{})
	var code int
	var res []Result
	go func() {
		defer close(done)
		code, res = s.Run(context.Background(), []Pair{{
			Name: "a", Sidecar: sh(`exit 2`, nil, ""), Ready: never,
			App: ptr(sh(`echo should-not-run`, nil, "")),
		}})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run hung although the sidecar exited before it was ready")
	}
	if code != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "exited before it was ready") {
		t.Fatalf("code = %d, result = %+v", code, res[0])
	}
}

func TestStartFailure(t *testing.T) {
	s := &Supervisor{}
	code, res := s.Run(context.Background(), []Pair{{Name: "a", Sidecar: Cmd{Path: "/nonexistent/outrigger"}}})
	if code != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "start sidecar for a") {
		t.Fatalf("code = %d, result = %+v", code, res[0])
	}
	code, res = s.Run(context.Background(), []Pair{{
		Name: "a", Sidecar: sh(politeSidecar, nil, ""), App: &Cmd{Path: "/nonexistent/app"},
	}})
	if code != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "start app a") {
		t.Fatalf("code = %d, result = %+v", code, res[0])
	}
}

func TestMultiplePairsFirstNonZeroCode(t *testing.T) {
	s := &Supervisor{Grace: 5 * time.Second}
	code, res := s.Run(context.Background(), []Pair{
		{Name: "ok", Sidecar: sh(politeSidecar, nil, ""), App: ptr(sh(`exit 0`, nil, ""))},
		{Name: "bad", Sidecar: sh(politeSidecar, nil, ""), App: ptr(sh(`sleep 0.1; exit 4`, nil, ""))},
	})
	if code != 4 || res[0].Code != 0 || res[1].Code != 4 {
		t.Fatalf("code = %d, results = %+v", code, res)
	}
}

func TestLineWriter(t *testing.T) {
	var con, file bytes.Buffer
	w := NewLineWriter(NewConsole(&con), "== APP == ", &file)
	for _, chunk := range []string{"hel", "lo\r\nwor", "ld\n\npartial"} {
		if n, err := w.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	w.Flush()
	w.Flush() // idempotent
	if want := "== APP == hello\n== APP == world\n== APP == \n== APP == partial\n"; con.String() != want {
		t.Errorf("console = %q, want %q", con.String(), want)
	}
	if want := "hello\nworld\n\npartial\n"; file.String() != want {
		t.Errorf("file = %q, want %q", file.String(), want)
	}
}

func TestHTTPReady(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls < 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	if err := HTTPReady(srv.URL+"/v1.0/healthz/outbound", 5*time.Second)(context.Background()); err != nil {
		t.Fatalf("HTTPReady: %v", err)
	}

	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer never.Close()
	err := HTTPReady(never.URL, 300*time.Millisecond)(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("HTTPReady on a failing server = %v; want a timeout naming the last status", err)
	}
}

func TestEnviron(t *testing.T) {
	got := Environ([]string{"A=1", "B=2", "PATH=/bin"}, "B=3", "C=4", "A=5")
	want := []string{"A=5", "B=3", "PATH=/bin", "C=4"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Environ = %v, want %v", got, want)
	}
}

func ptr[T any](v T) *T { return &v }
