package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the bench's child roles: the bench re-executes
// os.Executable(), which under `go test` is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == cmdEcho || os.Args[1] == cmdProxy) {
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
}

// TestOutrigger runs the full scenario set when bin/outrigger has been built (make build); it is
// skipped, with a message saying so, when it has not.
func TestOutrigger(t *testing.T) {
	bin, err := filepath.Abs(filepath.Join("..", "..", "bin", "outrigger"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("SKIPPING the Outrigger scenarios: %s not found (run `make build` to include them): %v", bin, err)
	}
	rep, _ := runBench(t, "-outrigger", bin)
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
