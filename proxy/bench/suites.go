package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/outrigger/outrigger/proxy/bench/loadgen"
	"github.com/outrigger/outrigger/proxy/bench/procstat"
)

// Suite names, in the order `-suite all` runs them.
const (
	suiteInvoke     = "invoke"
	suiteState      = "state"
	suitePubsub     = "pubsub"
	suiteLock       = "lock"
	suiteSecrets    = "secrets"
	suiteResiliency = "resiliency"
)

func allSuites() []string {
	return []string{suiteInvoke, suiteState, suitePubsub, suiteLock, suiteSecrets, suiteResiliency}
}

// parseSuites reads -suite: "all" or a comma-separated subset, returned in run order.
func parseSuites(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" {
		return allSuites(), nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(allSuites(), name) {
			return nil, fmt.Errorf("-suite: unknown suite %q (want all or a list of %s)", name, strings.Join(allSuites(), ","))
		}
		want[name] = true
	}
	var out []string
	for _, name := range allSuites() {
		if want[name] {
			out = append(out, name)
		}
	}
	return out, nil
}

// env is what every suite shares: the flags, the sidecar launcher, process tracking for clean-up
// and a direct Redis client for the baselines.
type env struct {
	o        options
	l        *launcher // nil with -skip-outrigger
	self     string    // this executable, re-executed for child roles
	progress func(string, ...any)
	track    func(*proc)
	redis    *redis.Client // nil until redisClient is first called
	tag      string        // unique per run: names keys, streams and app ids
}

// redisClient returns the baselines' go-redis client, checking the server answers.
func (e *env) redisClient(ctx context.Context) (*redis.Client, error) {
	if e.redis != nil {
		return e.redis, nil
	}
	c := redis.NewClient(&redis.Options{Addr: e.o.redisAddr, PoolSize: max(e.o.concurrency*2, 16), DisableIdentity: true})
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis at %s does not answer (start it with `bash .ci/services` or `redis-server --daemonize yes`): %w", e.o.redisAddr, err)
	}
	e.redis = c
	return c, nil
}

// deleteKeys removes every Redis key matching pattern (the bench's own keys, after a suite).
func (e *env) deleteKeys(pattern string) {
	if e.redis == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it := e.redis.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			e.redis.Unlink(ctx, batch...) //nolint:errcheck // best effort clean-up
			batch = batch[:0]
		}
	}
	for it.Next(ctx) {
		if batch = append(batch, it.Val()); len(batch) >= 500 {
			flush()
		}
	}
	flush()
	if err := it.Err(); err != nil {
		e.progress("  warning: clean-up of Redis keys %s: %v", pattern, err)
	}
}

// writeResources writes files (name → content) into a fresh resources directory for a suite.
func (e *env) writeResources(suite string, files map[string]string) (string, error) {
	dir, err := os.MkdirTemp(e.l.dir, suite+"-")
	if err != nil {
		return "", fmt.Errorf("resources for %s: %w", suite, err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return "", fmt.Errorf("resources for %s: %w", suite, err)
		}
	}
	return dir, nil
}

// startSidecar starts a sidecar and waits until it reports healthy (components initialised).
func (e *env) startSidecar(ctx context.Context, spec sidecarSpec) (*sidecar, error) {
	s, err := e.l.start(spec)
	if err != nil {
		return nil, err
	}
	e.track(s.proc)
	if _, err := waitStatus(ctx, s.proc, s.url("/v1.0/healthz"), http.StatusNoContent, 5*time.Millisecond, 30*time.Second); err != nil {
		return nil, err
	}
	return s, nil
}

// dial opens a gRPC connection to a sidecar's Dapr API, as an SDK does (one connection).
func dial(s *sidecar) (*grpc.ClientConn, runtimev1.DaprClient, error) {
	conn, err := grpc.NewClient(s.grpcAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s gRPC API: %w", s.name, err)
	}
	return conn, runtimev1.NewDaprClient(conn), nil
}

// httpClient is a keep-alive client with a connection per worker, never proxied.
func httpClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}}
}

// doHTTP sends one request and checks the status; the body is returned (read fully).
func doHTTP(ctx context.Context, c *http.Client, method, url, contentType string, body []byte, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != want {
		return b, fmt.Errorf("%s %s: status %d (want %d): %.200s", method, strings.SplitN(url, "/", 4)[3], resp.StatusCode, want, b)
	}
	return b, nil
}

// sidecarCPU is the sidecar and the pids of its plugins named in plugins (binary names), for a
// row's CPU column.
func sidecarCPU(ctx context.Context, s *sidecar, plugins ...string) ([]*proc, []int) {
	var pids []int
	if all, err := pluginPIDs(ctx, s); err == nil {
		for _, n := range plugins {
			if pid, ok := all[n]; ok {
				pids = append(pids, pid)
			}
		}
	}
	return []*proc{s.proc}, pids
}

// pluginPIDs reads the plugin processes of a sidecar from GET /v1.0/metadata's extended
// attribute "outrigger.plugins": binary name → pid.
func pluginPIDs(ctx context.Context, s *sidecar) (map[string]int, error) {
	b, err := doHTTP(ctx, httpClient(1, 5*time.Second), http.MethodGet, s.url("/v1.0/metadata"), "", nil, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", s.name, err)
	}
	var md struct {
		Extended map[string]string `json:"extended"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", s.name, err)
	}
	raw, ok := md.Extended["outrigger.plugins"]
	if !ok {
		return nil, fmt.Errorf("metadata of %s has no extended attribute outrigger.plugins", s.name)
	}
	var ps []struct {
		Name string `json:"name"`
		PID  int    `json:"pid"`
	}
	if err := json.Unmarshal([]byte(raw), &ps); err != nil {
		return nil, fmt.Errorf("metadata of %s: outrigger.plugins: %w", s.name, err)
	}
	out := map[string]int{}
	for _, p := range ps {
		if p.PID > 0 {
			out[p.Name] = p.PID
		}
	}
	return out, nil
}

// opScenario is one row of a suite's table: an operation run in a closed loop.
type opScenario struct {
	name, path string
	conc       int           // workers; 0 means -c
	duration   time.Duration // measured window; 0 means -duration
	op         loadgen.Op
	procs      []*proc // whose CPU counts for the row (may be empty); must not exit
	extraPIDs  []int   // more processes whose CPU counts (plugins the sidecar launched)
}

// opRow is a measured row of a suite's table.
type opRow struct {
	Name        string        `json:"name"`
	Path        string        `json:"path"`
	Concurrency int           `json:"concurrency"`
	Requests    uint64        `json:"ops"`
	Errors      uint64        `json:"errors"`
	ErrSample   []string      `json:"error_sample,omitempty"`
	Window      time.Duration `json:"window_ns"`
	RPS         float64       `json:"ops_per_second"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	Max         time.Duration `json:"max_ns"`
	CPU1k       float64       `json:"cpu_s_per_1k_ops,omitempty"` // CPU of procs per 1000 ops
	Note        string        `json:"note,omitempty"`
}

// suiteReport is one suite's table, notes and goals (part of the -json document).
type suiteReport struct {
	Name  string   `json:"name"`
	Title string   `json:"title"`
	Notes []string `json:"notes,omitempty"` // SKIPPED lines and caveats, printed loudly
	Rows  []opRow  `json:"rows"`
	Goals []goal   `json:"goals"`
}

func (s *suiteReport) row(name string) *opRow {
	for i := range s.Rows {
		if s.Rows[i].Name == name {
			return &s.Rows[i]
		}
	}
	return nil
}

// note records a caveat and echoes it to the progress stream at once.
func (e *env) note(s *suiteReport, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	s.Notes = append(s.Notes, msg)
	e.progress("  %s", msg)
}

// measure runs the scenarios -rounds times, interleaved, and pools each one's windows.
func (e *env) measure(ctx context.Context, suite string, scs []opScenario) ([]opRow, error) {
	hists := make([]*loadgen.Histogram, len(scs))
	rows := make([]opRow, len(scs))
	cpus := make([]time.Duration, len(scs))
	for i, sc := range scs {
		hists[i] = loadgen.NewHistogram()
		rows[i] = opRow{Name: sc.name, Path: sc.path, Concurrency: cmp0(sc.conc, e.o.concurrency)}
	}
	for round := 1; round <= e.o.rounds; round++ {
		for i, sc := range scs {
			d := cmp0(sc.duration, e.o.duration)
			e.progress("%s: round %d/%d, %s  (%d workers, %v warm-up + %v)", suite, round, e.o.rounds, sc.name, rows[i].Concurrency, e.o.warmup, d)
			var before time.Duration
			res, err := loadgen.RunOps(ctx, loadgen.OpsConfig{
				Op: sc.op, Concurrency: rows[i].Concurrency, Warmup: e.o.warmup, Duration: d,
				MaxRequests: e.o.maxRequests, Timeout: e.o.timeout,
				OnWindowStart: func() { before = cpuOf(sc.procs, sc.extraPIDs) },
				OnWindowEnd:   func() { cpus[i] += cpuOf(sc.procs, sc.extraPIDs) - before },
			})
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", suite, sc.name, err)
			}
			for _, p := range sc.procs {
				if exited, err := p.exitErr(); exited {
					return nil, fmt.Errorf("%s %s: %w; output: %s", suite, sc.name, err, p.logs)
				}
			}
			hists[i].Merge(res.Latency)
			rows[i].Errors += res.Errors
			rows[i].Window += res.Window
			for _, m := range res.ErrSample {
				if len(rows[i].ErrSample) < 5 && !slices.Contains(rows[i].ErrSample, m) {
					rows[i].ErrSample = append(rows[i].ErrSample, m)
				}
			}
		}
	}
	for i := range rows {
		fillLatency(&rows[i], hists[i])
		if rows[i].Requests > 0 && len(scs[i].procs)+len(scs[i].extraPIDs) > 0 {
			rows[i].CPU1k = cpus[i].Seconds() / (float64(rows[i].Requests) / 1000)
		}
	}
	return rows, nil
}

// fillLatency sets a row's count, rate and quantiles from its pooled histogram and window.
func fillLatency(r *opRow, h *loadgen.Histogram) {
	r.Requests = h.Count()
	if r.Window > 0 {
		r.RPS = float64(r.Requests) / r.Window.Seconds()
	}
	r.P50, r.P99, r.Max = h.Quantile(0.50), h.Quantile(0.99), h.Max()
}

func cmp0[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// cpuOf sums the CPU time of processes (0 for any that cannot be read).
func cpuOf(ps []*proc, pids []int) time.Duration {
	for _, p := range ps {
		pids = append(pids, p.Pid())
	}
	var total time.Duration
	for _, pid := range pids {
		if d, err := procstat.CPU(pid); err == nil {
			total += d
		}
	}
	return total
}

// throughputGoal compares a row's rate with a baseline's: row ≥ want × base.
func throughputGoal(name string, row, base *opRow, want float64) goal {
	if row == nil || base == nil || base.RPS <= 0 || row.Requests == 0 {
		return goal{Name: name, Value: "not measured", Target: "≥ " + ratio(want)}
	}
	r := row.RPS / base.RPS
	ok := r >= want
	// Three decimals: a ratio just under the target must not print as the target itself.
	return goal{Name: name, Value: fmt.Sprintf("%.3f× (%.0f vs %.0f ops/s)", r, row.RPS, base.RPS), Target: "≥ " + ratio(want), Met: &ok}
}

// addedLatencyGoal compares p50s: row − base ≤ limit.
func addedLatencyGoal(name string, row, base *opRow, limit time.Duration) goal {
	if row == nil || base == nil || row.Requests == 0 || base.Requests == 0 {
		return goal{Name: name, Value: "not measured", Target: "≤ " + dur(limit)}
	}
	d := row.P50 - base.P50
	ok := d <= limit
	return goal{Name: name, Value: fmt.Sprintf("%s (%s vs %s)", signedDur(d), dur(row.P50), dur(base.P50)), Target: "≤ " + dur(limit), Met: &ok}
}

func signedDur(d time.Duration) string {
	if d < 0 {
		return "-" + dur(-d)
	}
	return "+" + dur(d)
}

func printSuite(w io.Writer, s *suiteReport) {
	fmt.Fprintf(w, "\n%s\n", s.Title)
	for _, n := range s.Notes {
		fmt.Fprintf(w, "NOTE: %s\n", n)
	}
	if len(s.Rows) > 0 {
		fmt.Fprintln(w)
		rows := [][]string{{"scenario", "path", "conc", "ops/s", "p50", "p99", "max", "errors", "CPU-s/1k ops", "note"}}
		for _, r := range s.Rows {
			cpu := "-"
			if r.CPU1k > 0 {
				cpu = fmt.Sprintf("%.3f", r.CPU1k)
			}
			rows = append(rows, []string{r.Name, r.Path, fmt.Sprint(r.Concurrency), fmt.Sprintf("%.0f", r.RPS),
				dur(r.P50), dur(r.P99), dur(r.Max), fmt.Sprint(r.Errors), cpu, r.Note})
		}
		writeTable(w, rows, 2)
		for _, r := range s.Rows {
			if r.Errors > 0 || len(r.ErrSample) > 0 {
				fmt.Fprintf(w, "errors in %s (%d in window): %s\n", r.Name, r.Errors, strings.Join(r.ErrSample, "; "))
			}
		}
	}
	if len(s.Goals) > 0 {
		fmt.Fprintf(w, "\nGoals (%s):\n", s.Name)
		printGoals(w, s.Goals)
	}
}

// close releases the baselines' Redis client.
func (e *env) close() {
	if e.redis != nil {
		e.redis.Close()
	}
}

// runSuite runs one suite other than invoke. Without an outrigger binary there is nothing to
// compare, so the suite is reported as SKIPPED.
func runSuite(ctx context.Context, e *env, name string) (*suiteReport, error) {
	if e.l == nil {
		s := &suiteReport{Name: name, Title: "Outrigger " + name + " benchmark"}
		e.note(s, "SKIPPED: the %s suite needs bin/outrigger (-skip-outrigger given)", name)
		return s, nil
	}
	switch name {
	case suiteState:
		return runState(ctx, e)
	case suitePubsub:
		return runPubsub(ctx, e)
	case suiteLock:
		return runLock(ctx, e)
	case suiteSecrets:
		return runSecrets(ctx, e)
	case suiteResiliency:
		return runResiliency(ctx, e)
	}
	return nil, fmt.Errorf("unknown suite %q", name)
}
