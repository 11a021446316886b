package statee2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// ---------------------------------------------------------------- ports and names

var reservedPorts = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// freePort returns a loopback port free for TCP and UDP (gossip uses both),
// never the same twice in this process.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("probe a free port: %v", err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, uerr := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		ln.Close()
		if uerr != nil {
			continue
		}
		pc.Close()
		reservedPorts.Lock()
		taken := reservedPorts.m[p]
		reservedPorts.m[p] = true
		reservedPorts.Unlock()
		if !taken {
			return p
		}
	}
	t.Fatal("no free loopback port after 100 tries")
	return 0
}

// uniq returns prefix plus 8 random hex digits (app ids, table names).
func uniq(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// ---------------------------------------------------------------- backends

const (
	redisAddr = "127.0.0.1:6379"
	pgConn    = "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable"
)

// needServer fails the test (never skips) when a backend is not listening.
func needServer(t *testing.T, name, addr, howTo string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable on %s (%v); start it with: %s (or run `bash .ci/services`)", name, addr, err, howTo)
	}
	c.Close()
}

// component is one Component manifest.
type component struct {
	name, typ string
	md        map[string]string
	spec      string // extra spec lines, e.g. "initTimeout: 20s"
}

func (c component) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: %s\nspec:\n  type: %s\n  version: v1\n", c.name, c.typ)
	if c.spec != "" {
		for _, l := range strings.Split(strings.TrimSpace(c.spec), "\n") {
			b.WriteString("  " + l + "\n")
		}
	}
	if len(c.md) > 0 {
		b.WriteString("  metadata:\n")
		for k, v := range c.md {
			fmt.Fprintf(&b, "  - name: %s\n    value: %s\n", k, strconv.Quote(v))
		}
	}
	return b.String()
}

// writeComponents writes the manifests as one multi-document file in a new
// directory and returns the directory.
func writeComponents(t *testing.T, cs ...component) string {
	t.Helper()
	dir := t.TempDir()
	var docs []string
	for _, c := range cs {
		docs = append(docs, c.yaml())
	}
	if err := os.WriteFile(filepath.Join(dir, "components.yaml"), []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func sqliteComponent(t *testing.T, name string) component {
	return component{name: name, typ: "state.sqlite", md: map[string]string{
		"connectionString": filepath.Join(t.TempDir(), "state.db")}}
}

// redisComponent needs Redis and deletes the app's keys when the test ends.
func redisComponent(t *testing.T, name, appID string) component {
	t.Helper()
	needServer(t, "Redis", redisAddr, "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rc := redis.NewClient(&redis.Options{Addr: redisAddr})
		defer rc.Close()
		iter := rc.Scan(ctx, 0, appID+"||*", 1000).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
	})
	return component{name: name, typ: "state.redis", md: map[string]string{"redisHost": redisAddr}}
}

// pgComponent needs PostgreSQL and uses private tables, dropped when the test ends.
func pgComponent(t *testing.T, name string) component {
	t.Helper()
	needServer(t, "PostgreSQL", "127.0.0.1:5432",
		`pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start (trust auth, db "test")`)
	table, meta := uniq("e2e_state_"), uniq("e2e_meta_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgConn)
		if err != nil {
			t.Logf("drop test tables: %v", err)
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP TABLE IF EXISTS "+table+", "+meta)
	})
	return component{name: name, typ: "state.postgresql", md: map[string]string{
		"connectionString": pgConn, "tableName": table, "metadataTableName": meta}}
}

// ---------------------------------------------------------------- processes

// syncBuffer collects a process's output.
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

// proc is a child process the test started; it is ended in t.Cleanup and
// its output is printed when the test failed.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{}
	waitErr error // valid after done
}

// cleanEnv is the test's environment without variables that would change
// how a sidecar or plugin behaves (API tokens, the go-plugin cookie).
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DAPR_API_TOKEN", "APP_API_TOKEN", "OUTRIGGER_PLUGIN", "DAPR_COMPONENTS_SOCKETS_FOLDER", "NAMESPACE":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("---- output of %s (pid %d, exit %v) ----\n%s", p.name, p.cmd.Process.Pid, p.waitErr, p.out)
		}
	})
	return p
}

// stop sends SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// sidecar is one running `outrigger sidecar`.
type sidecar struct {
	*proc
	appID              string
	httpPort, grpcPort int
}

type sidecarOpts struct {
	appID     string
	resources string   // --resources-path ("" = none)
	args      []string // extra flags
	env       []string // extra KEY=VALUE
}

// launchSidecar starts a sidecar without waiting for it.
func launchSidecar(t *testing.T, o sidecarOpts) *sidecar {
	t.Helper()
	if o.appID == "" {
		o.appID = uniq("state-e2e-")
	}
	s := &sidecar{appID: o.appID, httpPort: freePort(t), grpcPort: freePort(t)}
	args := []string{"sidecar",
		"--app-id", o.appID,
		"--dapr-http-port", strconv.Itoa(s.httpPort),
		"--dapr-grpc-port", strconv.Itoa(s.grpcPort),
		"--metrics-port", strconv.Itoa(freePort(t)),
		"--dapr-internal-grpc-port", "0",
		"--admin-port", "0",
		"--gossip-port", strconv.Itoa(freePort(t)),
		"--log-level", "info",
	}
	if o.resources != "" {
		args = append(args, "--resources-path", o.resources)
	}
	args = append(args, o.args...)
	s.proc = startProc(t, "sidecar "+o.appID, cleanEnv(append([]string{"OUTRIGGER_HOME=" + t.TempDir()}, o.env...)...), outrigger, args...)
	return s
}

// startSidecar starts a sidecar and waits until GET /v1.0/healthz answers 204.
func startSidecar(t *testing.T, o sidecarOpts) *sidecar {
	t.Helper()
	s := launchSidecar(t, o)
	s.waitHealthy(t, 30*time.Second)
	return s
}

// waitHealthy polls GET /v1.0/healthz until 204; fails after deadline or when
// the process exits.
func (s *sidecar) waitHealthy(t *testing.T, deadline time.Duration) {
	t.Helper()
	end := time.Now().Add(deadline)
	last := ""
	for {
		r, err := tryDo(http.MethodGet, s.url("/v1.0/healthz"), nil, nil, time.Second)
		if err == nil && r.status == http.StatusNoContent {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %s", r.status, r.body)
		}
		if s.exited() {
			t.Fatalf("%s exited before it was healthy: %v", s.name, s.waitErr)
		}
		if time.Now().After(end) {
			t.Fatalf("%s: GET /v1.0/healthz did not answer 204 within %v (last: %s)", s.name, deadline, last)
		}
		time.Sleep(25 * time.Millisecond) // poll interval
	}
}

func (s *sidecar) url(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.httpPort) + path
}

// client returns an official Go SDK client connected to the sidecar's gRPC port.
func (s *sidecar) client(t *testing.T) dapr.Client {
	t.Helper()
	c, err := dapr.NewClientWithAddress("127.0.0.1:" + strconv.Itoa(s.grpcPort))
	if err != nil {
		t.Fatalf("Go SDK client for %s: %v", s.name, err)
	}
	t.Cleanup(c.Close)
	return c
}

// ---------------------------------------------------------------- HTTP

var httpc = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}

type result struct {
	status int
	header http.Header
	body   []byte
}

func tryDo(method, url string, hdr http.Header, body []byte, timeout time.Duration) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return result{}, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, fmt.Errorf("read body: %w", err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// do is one request that must get an answer within 20 s.
func do(t *testing.T, method, url string, hdr http.Header, body []byte) result {
	t.Helper()
	r, err := tryDo(method, url, hdr, body, 20*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// daprError is Dapr's JSON error body.
type daprError struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

// wantError checks status and errorCode of a Dapr error answer.
func wantError(t *testing.T, what string, r result, status int, code string) daprError {
	t.Helper()
	var e daprError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("%s: body is not Dapr's JSON error: %v; status %d body %q", what, err, r.status, r.body)
	}
	if r.status != status || e.ErrorCode != code {
		t.Errorf("%s: got %d %q, want %d %s (body %s)", what, r.status, e.ErrorCode, status, code, r.body)
	}
	return e
}

// ---------------------------------------------------------------- metadata

type metadataResp struct {
	ID         string `json:"id"`
	Components []struct {
		Name         string   `json:"name"`
		Type         string   `json:"type"`
		Version      string   `json:"version"`
		Capabilities []string `json:"capabilities"`
	} `json:"components"`
	Extended map[string]string `json:"extended"`
}

type pluginStatus struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	PID        int      `json:"pid"`
	State      string   `json:"state"`
	Restarts   int      `json:"restarts"`
	Components []string `json:"components"`
}

func (s *sidecar) metadata(t *testing.T) metadataResp {
	t.Helper()
	r := do(t, http.MethodGet, s.url("/v1.0/metadata"), nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1.0/metadata: %d %s", r.status, r.body)
	}
	var m metadataResp
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("GET /v1.0/metadata: %v; body %s", err, r.body)
	}
	return m
}

// plugin returns the status of the named plugin from the metadata's
// extended attribute "outrigger.plugins".
func (s *sidecar) plugin(t *testing.T, name string) pluginStatus {
	t.Helper()
	m := s.metadata(t)
	raw, ok := m.Extended["outrigger.plugins"]
	if !ok {
		t.Fatalf("metadata extended has no outrigger.plugins: %v", m.Extended)
	}
	var ps []pluginStatus
	if err := json.Unmarshal([]byte(raw), &ps); err != nil {
		t.Fatalf("outrigger.plugins is not a JSON list of plugins: %v; %s", err, raw)
	}
	for _, p := range ps {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("plugin %s not in outrigger.plugins: %s", name, raw)
	return pluginStatus{}
}

// waitFor polls cond until it holds or deadline passes.
func waitFor(t *testing.T, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}
