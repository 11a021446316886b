package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestMain lets the test binary play the bench's child roles: the bench re-executes
// os.Executable(), which under `go test` is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && isChildRole(os.Args[1]) {
		os.Exit(mainExit(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// tinyArgs is a scenario set small enough for `go test`.
var tinyArgs = []string{"-c", "4", "-warmup", "100ms", "-duration", "300ms", "-startup-runs", "2", "-settle", "300ms"}

func runBench(t *testing.T, extra ...string) (*report, string) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr bytes.Buffer
	args := append(append(append([]string(nil), tinyArgs...), "-json", jsonPath), extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- mainExit(args, &stdout, &stderr) }()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("bench %q exited %d\nstdout:\n%s\nstderr:\n%s", args, code, &stdout, &stderr)
		}
	case <-ctx.Done():
		t.Fatalf("bench %q did not finish within 50s\nstderr so far:\n%s", args, &stderr)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatalf("-json file: %v", err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("decode -json: %v\n%s", err, b)
	}
	t.Logf("bench output:\n%s", &stdout)
	return &rep, stdout.String()
}

func checkScenario(t *testing.T, rep *report, prefix string, wantProxyCPU bool) {
	t.Helper()
	s := rep.scenario(prefix)
	if s == nil {
		t.Fatalf("scenario %q missing from report", prefix)
	}
	if s.Errors != 0 || s.Requests == 0 || s.RPS <= 0 {
		t.Errorf("%s: %d requests, %d errors (%v), %.0f req/s; want some requests and no errors", s.Name, s.Requests, s.Errors, s.ErrSample, s.RPS)
	}
	if s.P50 <= 0 || s.P50 > s.P99 || s.P99 > s.Max {
		t.Errorf("%s: implausible latencies p50 %v p99 %v max %v", s.Name, s.P50, s.P99, s.Max)
	}
	// CPU is read at 10 ms resolution; a loaded proxy uses far more in a 300 ms window.
	if wantProxyCPU && (s.ProxyCPU <= 0 || s.ProxyCPU1k <= 0) {
		t.Errorf("%s: proxy CPU %v (%.3f s/1k req); want > 0", s.Name, s.ProxyCPU, s.ProxyCPU1k)
	}
	if !wantProxyCPU && s.ProxyCPU != 0 {
		t.Errorf("%s: has no proxy but reports proxy CPU %v", s.Name, s.ProxyCPU)
	}
}

func TestBaselines(t *testing.T) {
	rep, out := runBench(t, "-skip-outrigger")
	if len(rep.Scenarios) != 2 {
		t.Fatalf("want scenarios 1 and 4 only, got %d", len(rep.Scenarios))
	}
	checkScenario(t, rep, "1 ", false)
	checkScenario(t, rep, "4 ", true)
	for _, want := range []string{"1 direct", "4 proxy-2hop", "SKIPPED", "proxy CPU-s/1k req", "errors (all scenarios)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if rep.Ratios != nil || rep.Startup != nil {
		t.Errorf("baselines-only run reports Outrigger figures: %+v %+v", rep.Ratios, rep.Startup)
	}
	// Every other suite needs the sidecar: each is reported, loudly, as skipped.
	if len(rep.Suites) != len(allSuites())-1 {
		t.Fatalf("want %d skipped suites, got %d", len(allSuites())-1, len(rep.Suites))
	}
	for _, s := range rep.Suites {
		if len(s.Notes) == 0 || !strings.Contains(s.Notes[0], "SKIPPED") || len(s.Rows) != 0 {
			t.Errorf("suite %s without outrigger: notes %q, %d rows; want a SKIPPED note and no rows", s.Name, s.Notes, len(s.Rows))
		}
	}
}

// outriggerBin returns bin/outrigger, skipping the test loudly when it has not been built.
func outriggerBin(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "..", "bin", "outrigger"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("SKIPPING the Outrigger suites: %s not found (run `make build` to include them): %v", bin, err)
	}
	return bin
}

// TestSuites runs a tiny smoke of every suite but invoke against the built sidecar and plugins
// and the local Redis: rows measured without errors, goals computed, Redis keys cleaned up.
func TestSuites(t *testing.T) {
	bin := outriggerBin(t)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at 127.0.0.1:6379 is needed (start it with `bash .ci/services`): %v", err)
	}
	tests := []struct {
		suite    string
		plugins  []string // plugin binaries the rows need
		rows     []string
		goalName string // a goal that must be present (measured) when the rows are
	}{
		{suiteState, []string{"state-redis"}, []string{"get direct", "get http", "get grpc", "set direct", "set http", "set grpc", "get http c=1", "set grpc c=1", "get floor http", "get floor grpc", "set floor http", "set floor grpc",
			"get fwd floor http", "get fwd floor grpc", "set fwd floor http", "set fwd floor grpc"}, "get http: throughput vs direct @c=4"},
		{suitePubsub, []string{"pubsub-redis"}, []string{"direct redis streams", "pubsub.redis"}, "pubsub.redis end-to-end rate"},
		{suiteLock, []string{"lock-redis"}, []string{"lock direct", "lock http", "lock grpc", "lock floor http", "lock floor grpc", "lock fwd floor http", "lock fwd floor grpc"}, "lock http: throughput vs direct"},
		{suiteSecrets, []string{"secretstores-local.file"}, []string{"secret http", "secret grpc"}, "secret grpc"},
		{suiteResiliency, nil, []string{"2hop off"}, "vs off: throughput"},
	}
	for _, tt := range tests {
		t.Run(tt.suite, func(t *testing.T) {
			rep, out := runBench(t, "-outrigger", bin, "-suite", tt.suite)
			if len(rep.Suites) != 1 || rep.Suites[0].Name != tt.suite || len(rep.Scenarios) != 0 {
				t.Fatalf("-suite %s: got %d suites and %d invoke scenarios", tt.suite, len(rep.Suites), len(rep.Scenarios))
			}
			s := rep.Suites[0]
			for _, p := range tt.plugins {
				if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "plugins", p)); err != nil {
					if !strings.Contains(out, "SKIPPED") {
						t.Fatalf("plugin %s missing but the table does not say SKIPPED:\n%s", p, out)
					}
					t.Skipf("SKIPPING the %s rows: plugin %s not built", tt.suite, p)
				}
			}
			for _, name := range tt.rows {
				r := s.row(name)
				if r == nil {
					t.Errorf("row %q missing", name)
					continue
				}
				if r.Errors != 0 || r.Requests == 0 || r.RPS <= 0 {
					t.Errorf("%s: %d ops, %d errors (%v), %.0f ops/s; want some ops and no errors", name, r.Requests, r.Errors, r.ErrSample, r.RPS)
				}
				if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max {
					t.Errorf("%s: implausible latencies p50 %v p99 %v max %v", name, r.P50, r.P99, r.Max)
				}
			}
			found := false
			for _, g := range s.Goals {
				if strings.Contains(g.Name, tt.goalName) && g.Value != "not measured" {
					found = true
				}
			}
			if !found {
				t.Errorf("goal %q not measured: %+v", tt.goalName, s.Goals)
			}
			if !strings.Contains(out, "Goals ("+tt.suite+")") {
				t.Errorf("table lacks the goals of %s:\n%s", tt.suite, out)
			}
			keys, err := rdb.Keys(context.Background(), fmt.Sprintf("*outrigger-bench-%d*", os.Getpid())).Result()
			if err != nil || len(keys) != 0 {
				t.Errorf("redis keys left behind: %v (err %v)", keys, err)
			}
		})
	}
}

func TestParseSuites(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"all", allSuites(), false},
		{"lock, state", []string{suiteState, suiteLock}, false},
		{"invoke", []string{suiteInvoke}, false},
		{"state,nope", nil, true},
		{"", nil, true},
	}
	for _, tt := range tests {
		got, err := parseSuites(tt.in)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("parseSuites(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestOutrigger runs the full scenario set when bin/outrigger has been built (make build); it is
// skipped, with a message saying so, when it has not.
func TestOutrigger(t *testing.T) {
	bin := outriggerBin(t)
	rep, _ := runBench(t, "-outrigger", bin, "-suite", "invoke")
	if len(rep.Scenarios) != 4 {
		t.Fatalf("want 4 scenarios, got %d", len(rep.Scenarios))
	}
	checkScenario(t, rep, "1 ", false)
	for _, p := range []string{"2 ", "3 ", "4 "} {
		checkScenario(t, rep, p, true)
	}
	if rep.Ratios == nil || rep.Ratios.P50 <= 0 || rep.Ratios.Throughput <= 0 {
		t.Errorf("ratios missing: %+v", rep.Ratios)
	}
	if st := rep.Startup; st == nil || len(st.Runs) != 2 || st.Median <= 0 || st.IdleRSS == 0 {
		t.Errorf("start-up/idle figures missing: %+v", rep.Startup)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"-nope"}, 2, "flag provided but not defined"},
		{"bad concurrency", []string{"-c", "0"}, 2, "-c 0"},
		{"bad duration", []string{"-duration", "-1s"}, 2, "-duration"},
		{"stray argument", []string{"extra"}, 2, "unexpected arguments"},
		{"missing binary", []string{"-outrigger", "/nonexistent/outrigger"}, 1, "make build"},
		{"unknown suite", []string{"-suite", "invoke,nope"}, 2, "unknown suite"},
		{"remote redis", []string{"-redis", "10.0.0.1:6379"}, 2, "loopback"},
		{"bad in-flight", []string{"-pubsub-inflight", "0"}, 2, "-pubsub-inflight"},
		{"help", []string{"-h"}, 0, "Usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := mainExit(tt.args, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.code, &stderr, tt.want)
			}
		})
	}
}

func TestQuickDefaults(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-duration", "3s"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 3*time.Second || o.warmup != 500*time.Millisecond || o.startupRuns != 3 {
		t.Fatalf("-quick with explicit -duration: got duration %v warm-up %v runs %d", o.duration, o.warmup, o.startupRuns)
	}
}

func TestChildRejectsRemoteTarget(t *testing.T) {
	cmd := exec.Command(os.Args[0], cmdProxy, "-target", "http://example.com:80")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "127.0.0.1") {
		t.Fatalf("proxy child accepted a remote target: err %v, output %s", err, out)
	}
}

// TestFloorChild starts the no-op floor server the way the suites do and makes each call the
// floor rows make, over HTTP and gRPC; SIGTERM then stops it cleanly.
func TestFloorChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, base, grpcAddr := startTestFloor(ctx, t, "floor")
	hc := httpClient(1, 5*time.Second)
	defer hc.CloseIdleConnections()

	conn, dapr := checkFloorCalls(ctx, t, hc, base, grpcAddr)
	defer conn.Close()
	if _, err := doHTTP(ctx, hc, http.MethodGet, base+"/v1.0/metadata", "", nil, http.StatusNotFound); err != nil {
		t.Errorf("a route the floor does not serve: %v", err)
	}
	if _, err := dapr.GetSecret(ctx, &runtimev1.GetSecretRequest{StoreName: "s", Key: "k"}); err == nil {
		t.Errorf("grpc GetSecret: the floor answered a method it does not implement")
	}

	conn.Close()
	p.Stop(5 * time.Second)
	if p.err != nil {
		t.Errorf("floor child did not exit cleanly on SIGTERM: %v; output: %s", p.err, p.logs)
	}
}

func TestParseFloorAddrs(t *testing.T) {
	tests := []struct {
		in, http, grpc string
		err            bool
	}{
		{"http=127.0.0.1:1 grpc=127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2", false},
		{"grpc=127.0.0.1:2 http=127.0.0.1:1", "127.0.0.1:1", "127.0.0.1:2", false},
		{"127.0.0.1:1", "", "", true},
		{"http=127.0.0.1:1", "", "", true},
		{"http= grpc=127.0.0.1:2", "", "", true},
	}
	for _, tt := range tests {
		h, g, err := parseFloorAddrs(tt.in)
		if (err != nil) != tt.err || h != tt.http || g != tt.grpc {
			t.Errorf("parseFloorAddrs(%q) = %q, %q, %v; want %q, %q (error %v)", tt.in, h, g, err, tt.http, tt.grpc, tt.err)
		}
	}
}

func TestFloorChildRejectsArguments(t *testing.T) {
	out, err := exec.Command(os.Args[0], cmdFloor, "extra").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no arguments") {
		t.Fatalf("floor child accepted an argument: err %v, output %s", err, out)
	}
}

// TestFwdFloorChild starts a no-op plugin (a floor child on a unix socket) and a forwarding floor
// in front of it, the way the suites do, and makes each call the fwd floor rows make; once the
// plugin is stopped, the forwarder must fail each call promptly (HTTP 500, a gRPC error).
func TestFwdFloorChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := filepath.Join(t.TempDir(), "plugin.sock")
	up, line, err := startChild(ctx, os.Args[0], "no-op plugin", cmdFloor, "-listen-unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Stop(time.Second)
	if want := floorUnixLine(sock); line != want {
		t.Fatalf("the no-op plugin announced %q; want %q", line, want)
	}
	fwd, base, grpcAddr := startTestFloor(ctx, t, "forwarding floor", "-forward", sock)
	hc := httpClient(1, 5*time.Second)
	defer hc.CloseIdleConnections()

	conn, dapr := checkFloorCalls(ctx, t, hc, base, grpcAddr)
	defer conn.Close()
	if _, err := doHTTP(ctx, hc, http.MethodPost, base+"/v1.0/state/"+stateStoreName, "application/json", []byte(`{"key":`), http.StatusBadRequest); err != nil {
		t.Errorf("http set with a broken body: %v", err)
	}

	// The plugin goes away: every call fails at once rather than waiting for it.
	up.Stop(5 * time.Second)
	if up.err != nil {
		t.Errorf("the no-op plugin did not exit cleanly on SIGTERM: %v; output: %s", up.err, up.logs)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("the no-op plugin left its socket %s behind", sock)
	}
	prompt := func(what string, f func(context.Context) error) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		start := time.Now()
		if err := f(cctx); err != nil {
			t.Errorf("%s with the plugin stopped: %v", what, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s with the plugin stopped took %v; want a prompt failure", what, d)
		}
	}
	prompt("http get", func(ctx context.Context) error {
		_, err := doHTTP(ctx, hc, http.MethodGet, base+"/v1.0/state/"+stateStoreName+"/k-0", "", nil, http.StatusInternalServerError)
		return err
	})
	prompt("http lock", func(ctx context.Context) error {
		_, err := doHTTP(ctx, hc, http.MethodPost, base+"/v1.0-alpha1/lock/"+lockStoreName, "application/json", []byte(`{"resourceId":"r","lockOwner":"o","expiryInSeconds":10}`), http.StatusInternalServerError)
		return err
	})
	prompt("grpc get", func(ctx context.Context) error {
		_, err := dapr.GetState(ctx, &runtimev1.GetStateRequest{StoreName: stateStoreName, Key: "k-0"})
		if st, _ := status.FromError(err); err == nil || st.Code() != codes.Unavailable {
			return fmt.Errorf("got %v; want the upstream's Unavailable", err)
		}
		return nil
	})

	conn.Close()
	fwd.Stop(5 * time.Second)
	if fwd.err != nil {
		t.Errorf("the forwarding floor did not exit cleanly on SIGTERM: %v; output: %s", fwd.err, fwd.logs)
	}
}

func TestFloorChildFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"forward to a missing socket", []string{cmdFloor, "-forward", filepath.Join(t.TempDir(), "none.sock")}, "-forward"},
		{"floor flags on another role", []string{cmdEcho, "-listen-unix", filepath.Join(t.TempDir(), "x.sock")}, "only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(os.Args[0], tt.args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Fatalf("%q: err %v, output %s; want a failure mentioning %q", tt.args, err, out, tt.want)
			}
		})
	}
}

// checkFloorCalls makes each call the floor rows make, over HTTP (base) and gRPC (grpcAddr), and
// checks the answers; it returns the gRPC connection and client for further calls.
func checkFloorCalls(ctx context.Context, t *testing.T, hc *http.Client, base, grpcAddr string) (*grpc.ClientConn, runtimev1.DaprClient) {
	t.Helper()
	resp, err := hc.Get(base + "/v1.0/state/" + stateStoreName + "/k-0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != floorETag {
		t.Errorf("http get: status %d, ETag %q; want 200 and %q", resp.StatusCode, resp.Header.Get("ETag"), floorETag)
	}
	b, err := doHTTP(ctx, hc, http.MethodGet, base+"/v1.0/state/"+stateStoreName+"/k-0", "", nil, http.StatusOK)
	if err != nil || len(b) != stateValueSize {
		t.Errorf("http get: %d bytes, %v; want %d", len(b), err, stateValueSize)
	}
	if _, err := doHTTP(ctx, hc, http.MethodPost, base+"/v1.0/state/"+stateStoreName, "application/json", []byte(`[{"key":"k-0","value":"v"}]`), http.StatusNoContent); err != nil {
		t.Errorf("http set: %v", err)
	}
	b, err = doHTTP(ctx, hc, http.MethodPost, base+"/v1.0-alpha1/lock/"+lockStoreName, "application/json", []byte(`{"resourceId":"r","lockOwner":"o","expiryInSeconds":10}`), http.StatusOK)
	var lock struct {
		Success bool `json:"success"`
	}
	if err != nil || json.Unmarshal(b, &lock) != nil || !lock.Success {
		t.Errorf("http lock: %q, %v; want success", b, err)
	}
	b, err = doHTTP(ctx, hc, http.MethodPost, base+"/v1.0-alpha1/unlock/"+lockStoreName, "application/json", []byte(`{"resourceId":"r","lockOwner":"o"}`), http.StatusOK)
	unlock := struct {
		Status *int `json:"status"`
	}{}
	if err != nil || json.Unmarshal(b, &unlock) != nil || unlock.Status == nil || *unlock.Status != 0 {
		t.Errorf("http unlock: %q, %v; want status 0", b, err)
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	dapr := runtimev1.NewDaprClient(conn)
	g, err := dapr.GetState(ctx, &runtimev1.GetStateRequest{StoreName: stateStoreName, Key: "k-0"})
	if err != nil || len(g.GetData()) != stateValueSize || g.GetEtag() != floorETag {
		t.Errorf("grpc get: %d bytes, etag %q, %v; want %d bytes, etag %q", len(g.GetData()), g.GetEtag(), err, stateValueSize, floorETag)
	}
	if _, err := dapr.SaveState(ctx, &runtimev1.SaveStateRequest{StoreName: stateStoreName, States: []*commonv1.StateItem{{Key: "k-0", Value: []byte("v")}}}); err != nil {
		t.Errorf("grpc set: %v", err)
	}
	if l, err := dapr.TryLockAlpha1(ctx, &runtimev1.TryLockRequest{StoreName: lockStoreName, ResourceId: "r", LockOwner: "o", ExpiryInSeconds: 10}); err != nil || !l.GetSuccess() {
		t.Errorf("grpc lock: %v, %v; want success", l, err)
	}
	if u, err := dapr.UnlockAlpha1(ctx, &runtimev1.UnlockRequest{StoreName: lockStoreName, ResourceId: "r", LockOwner: "o"}); err != nil || u.GetStatus() != runtimev1.UnlockResponse_SUCCESS {
		t.Errorf("grpc unlock: %v, %v; want SUCCESS", u, err)
	}
	return conn, dapr
}

// startTestFloor starts a floor child (with args) the way the suites do, stopped when the test
// ends, and returns it with its HTTP base URL and gRPC address.
func startTestFloor(ctx context.Context, t *testing.T, name string, args ...string) (p *proc, base, grpcAddr string) {
	t.Helper()
	p, line, err := startChild(ctx, os.Args[0], name, cmdFloor, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(time.Second) })
	httpAddr, grpcAddr, err := parseFloorAddrs(line)
	if err != nil {
		t.Fatal(err)
	}
	return p, "http://" + httpAddr, grpcAddr
}
