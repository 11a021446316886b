package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/resources"
)

// testPlugin is the test plugin binary built by TestMain.
var testPlugin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hosttest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	out, err := exec.Command("go", "build", "-o", testPlugin, "./testdata/testplugin").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the test plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects log output safely across goroutines.
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

type env struct {
	host       *Host
	pluginsDir string
	socketsDir string
	logs       *syncBuffer
}

// newEnv makes a host whose plugins dir holds the test plugin as
// "state-memory".
func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{pluginsDir: t.TempDir(), logs: &syncBuffer{}}
	// unix socket paths are limited to ~108 bytes: keep this one short.
	sd, err := os.MkdirTemp("", "sk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sd) })
	e.socketsDir = sd
	if err := os.Link(testPlugin, filepath.Join(e.pluginsDir, "state-memory")); err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{
		PluginsDir: e.pluginsDir, SocketsDir: e.socketsDir, HealthInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.host = h
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("host logs:\n%s", e.logs.String())
		}
	})
	return e
}

func comp(name, typ string, md ...string) resources.Component {
	c := resources.Component{Name: name, Type: typ, Version: "v1", InitTimeout: 5 * time.Second}
	for i := 0; i+1 < len(md); i += 2 {
		c.Metadata = append(c.Metadata, resources.MetadataItem{Name: md[i], Value: md[i+1]})
	}
	return c
}

func setGet(ctx context.Context, c *Component, key, val string) error {
	cl := componentsv1.NewStateStoreClient(c.Conn())
	if _, err := cl.Set(ctx, &componentsv1.SetRequest{Key: key, Value: []byte(val)}); err != nil {
		return err
	}
	resp, err := cl.Get(ctx, &componentsv1.GetRequest{Key: key})
	if err != nil {
		return err
	}
	if string(resp.GetData()) != val {
		return fmt.Errorf("get %s = %q, want %q", key, resp.GetData(), val)
	}
	return nil
}

func pidAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestProvisionManaged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, err := e.host.Provision(ctx, comp("a", "state.memory"))
	if err != nil {
		t.Fatalf("Provision a: %v", err)
	}
	b, err := e.host.Provision(ctx, comp("b", "state.memory"))
	if err != nil {
		t.Fatalf("Provision b: %v", err)
	}
	if err := setGet(ctx, a, "k", "from-a"); err != nil {
		t.Fatal(err)
	}
	if err := setGet(ctx, b, "k", "from-b"); err != nil {
		t.Fatal(err)
	}
	// instances are separate: a still sees its own value
	resp, err := componentsv1.NewStateStoreClient(a.Conn()).Get(ctx, &componentsv1.GetRequest{Key: "k"})
	if err != nil || string(resp.GetData()) != "from-a" {
		t.Errorf("a.Get = %q, %v; want from-a", resp.GetData(), err)
	}
	if f := a.Features(); len(f) != 1 || f[0] != "ETAG" || !a.HasFeature("ETAG") {
		t.Errorf("features = %v, want [ETAG]", f)
	}
	if c, ok := e.host.Lookup("state", "b"); !ok || c != b {
		t.Errorf("Lookup(state, b) = %v, %v", c, ok)
	}
	if _, ok := e.host.Lookup("pubsub", "b"); ok {
		t.Error("Lookup(pubsub, b) found a component")
	}
	ps := e.host.Plugins()
	if len(ps) != 1 || ps[0].Name != "state-memory" || ps[0].Kind != KindBinary || ps[0].State != StateRunning ||
		ps[0].PID == 0 || strings.Join(ps[0].Components, ",") != "a,b" {
		t.Fatalf("Plugins() = %+v, want one running state-memory serving a,b", ps)
	}
	cs := e.host.Components()
	if len(cs) != 2 || cs[0].Name != "a" || !cs[0].Ready || cs[0].Plugin != "state-memory" || cs[0].Inits != 1 {
		t.Errorf("Components() = %+v", cs)
	}
	if _, err := e.host.Provision(ctx, comp("a", "state.memory")); err == nil {
		t.Error("provisioning a second state component named a succeeded")
	}
	if !strings.Contains(e.logs.String(), "testplugin: serving under go-plugin") ||
		!strings.Contains(e.logs.String(), "plugin=state-memory") {
		t.Errorf("plugin stderr not forwarded to the host log tagged plugin=state-memory:\n%s", e.logs.String())
	}

	// Remove one: the plugin keeps serving the other; remove both: it stops.
	pid := ps[0].PID
	e.host.Remove(a)
	if err := setGet(ctx, b, "k2", "v"); err != nil {
		t.Fatalf("b after removing a: %v", err)
	}
	if _, err := componentsv1.NewStateStoreClient(a.Conn()).Get(ctx, &componentsv1.GetRequest{Key: "k"}); status.Code(err) != codes.Unavailable {
		t.Errorf("call on a removed component: %v, want Unavailable", err)
	}
	e.host.Remove(b)
	if len(e.host.Plugins()) != 0 {
		t.Errorf("plugins after removing every component: %+v", e.host.Plugins())
	}
	waitFor(t, 5*time.Second, "plugin process to exit", func() bool { return !pidAlive(pid) })
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKillRestart kills the plugin with SIGKILL under load: calls during the
// outage fail fast with Unavailable naming the plugin, and within 2 s the
// restarted plugin (instances re-Init'ed) serves again.
func TestKillRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := e.host.Provision(ctx, comp("store", "state.memory"))
	if err != nil {
		t.Fatal(err)
	}
	pid := e.host.Plugins()[0].PID

	var (
		mu        sync.Mutex
		failures  []error
		slowest   time.Duration
		successes int
	)
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
				start := time.Now()
				err := setGet(ctx, c, fmt.Sprintf("k%d-%d", w, i), "v")
				d := time.Since(start)
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
					slowest = max(slowest, d)
				} else {
					successes++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// recovered: a fresh call succeeds within 2 s of the kill
	var recovered time.Duration
	for {
		if time.Since(killed) > 2*time.Second {
			t.Fatalf("calls still failing 2s after kill -9; plugins: %+v", e.host.Plugins())
		}
		if p := e.host.Plugins(); len(p) == 1 && p[0].PID != pid && p[0].State == StateRunning {
			if err := setGet(ctx, c, "after", "restart"); err == nil {
				recovered = time.Since(killed)
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("recovered %s after kill -9; %d failed calls (slowest %s), %d succeeded", recovered, len(failures), slowest, successes)

	if len(failures) == 0 {
		t.Fatal("no call failed during the outage: the kill was not observed")
	}
	for _, err := range failures {
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "plugin state-memory") {
			t.Fatalf("call during outage: %v; want Unavailable naming plugin state-memory", err)
		}
	}
	if slowest > 500*time.Millisecond {
		t.Errorf("slowest failing call took %s; calls must fail fast", slowest)
	}
	p := e.host.Plugins()[0]
	if p.Restarts < 1 || p.State != StateRunning {
		t.Errorf("plugin status after restart: %+v", p)
	}
	if cs := e.host.Components(); cs[0].Inits != 2 || !cs[0].Ready {
		t.Errorf("component status after restart: %+v, want Inits=2 ready", cs[0])
	}
}

func startSocketPlugin(t *testing.T, dir, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testPlugin)
	cmd.Env = append(os.Environ(), "DAPR_COMPONENTS_SOCKETS_FOLDER="+dir, "TESTPLUGIN_NAME="+name)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestSocketPlugin: a socket plugin started after the host (and after
// Provision began waiting) is picked up; when it dies and comes back it is
// re-dialled and re-Init'ed.
func TestSocketPlugin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	type result struct {
		c   *Component
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := e.host.Provision(ctx, comp("sock", "state.memsock"))
		res <- result{c, err}
	}()
	time.Sleep(200 * time.Millisecond) // Provision is now waiting for the socket
	cmd := startSocketPlugin(t, e.socketsDir, "memsock")
	r := <-res
	if r.err != nil {
		t.Fatalf("Provision: %v", r.err)
	}
	c := r.c
	if err := setGet(ctx, c, "k", "v"); err != nil {
		t.Fatal(err)
	}
	ps := e.host.Plugins()
	if len(ps) != 1 || ps[0].Kind != KindSocket || ps[0].Name != "memsock.sock" || ps[0].PID != cmd.Process.Pid {
		t.Fatalf("Plugins() = %+v, want socket memsock.sock with pid %d", ps, cmd.Process.Pid)
	}
	if cat := e.host.Catalog(); !contains(cat, "state.memsock") || !contains(cat, "state.memory") {
		t.Errorf("Catalog() = %v", cat)
	}

	// The plugin dies: calls fail fast; it comes back: calls work again.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	waitFor(t, 2*time.Second, "calls to fail with Unavailable", func() bool {
		err := setGet(ctx, c, "k", "v")
		return status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "memsock.sock")
	})
	start := time.Now()
	err := setGet(ctx, c, "k", "v")
	if status.Code(err) != codes.Unavailable || time.Since(start) > 100*time.Millisecond {
		t.Errorf("call while the socket plugin is down: %v after %s; want a fast Unavailable", err, time.Since(start))
	}
	startSocketPlugin(t, e.socketsDir, "memsock")
	waitFor(t, 3*time.Second, "the socket plugin to be re-dialled and re-Init'ed", func() bool {
		return setGet(ctx, c, "k", "v") == nil
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestProvisionErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	slow := comp("slow", "state.memory", "initDelay", "3s")
	slow.InitTimeout = 300 * time.Millisecond
	failing := comp("failing", "state.memory", "failInit", "true")
	ignored := failing
	ignored.IgnoreErrors = true
	unknown := comp("nope", "state.nope")
	unknown.InitTimeout = 300 * time.Millisecond

	tests := []struct {
		name     string
		c        resources.Component
		want     []string
		is       error
		maxDelay time.Duration
	}{
		{"init timeout", slow, []string{"slow", "initTimeout 300ms"}, nil, 2 * time.Second},
		{"init fails", failing, []string{"init failed as asked"}, nil, 5 * time.Second},
		{"ignoreErrors", ignored, []string{"init failed as asked"}, ErrIgnored, 5 * time.Second},
		{"unknown type", unknown, []string{`unknown component type "state.nope"`, "available: state.memory"}, ErrUnknownType, 2 * time.Second},
		{"bad type", comp("x", "statememory"), []string{"not <category>.<name>"}, nil, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			c, err := e.host.Provision(ctx, tt.c)
			if err == nil {
				t.Fatalf("Provision succeeded: %+v", c.Status())
			}
			if d := time.Since(start); d > tt.maxDelay {
				t.Errorf("Provision took %s, want < %s", d, tt.maxDelay)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if tt.is == nil && errors.Is(err, ErrIgnored) {
				t.Errorf("error %v is ErrIgnored without ignoreErrors", err)
			}
			// cleanup on partial failure: no plugin left running
			if ps := e.host.Plugins(); len(ps) != 0 {
				t.Errorf("plugins left after a failed Provision: %+v", ps)
			}
			if _, ok := e.host.Lookup("state", tt.c.Name); ok {
				t.Error("failed component is registered")
			}
		})
	}
}

// TestLineWriter checks the line splitting and level sniffing used to
// forward plugin output into slog.
func TestLineWriter(t *testing.T) {
	var lines []string
	w := &lineWriter{emit: func(l string) { lines = append(lines, l) }}
	fmt.Fprint(w, "a\nb")
	fmt.Fprint(w, "c\r\n\nd\n")
	if got := strings.Join(lines, "|"); got != "a|bc|d" {
		t.Errorf("lines = %q, want a|bc|d", got)
	}
	if l := sniffLevel("time=x level=WARN msg=hi", slog.LevelDebug); l != slog.LevelWarn {
		t.Errorf("sniffLevel = %v", l)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{max: time.Second}
	var got []time.Duration
	for range 6 {
		got = append(got, b.next())
	}
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("backoff = %v, want %v", got, want)
	}
}
