package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger/outrigger/proxy/bench/loadgen"
	"github.com/outrigger/outrigger/proxy/bench/procstat"
)

// options are the bench's flags.
type options struct {
	outrigger      string
	skipOutrigger  bool
	concurrency    int
	bodySize       int
	duration       time.Duration
	rounds         int
	warmup         time.Duration
	quick          bool
	maxRequests    int64
	timeout        time.Duration
	startupRuns    int
	settle         time.Duration
	jsonOut        string
	strict         bool
	suites         []string // from -suite, in run order
	redisAddr      string
	pubsubInFlight int
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./proxy/bench [flags]\n\n"+
			"Measures the building blocks through Outrigger sidecars next to baselines (service\n"+
			"invocation direct and through a minimal reverse-proxy pair; state, pub/sub and lock\n"+
			"directly with go-redis), in one run, and prints one table per suite with the ratios\n"+
			"next to the goals.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.outrigger, "outrigger", "bin/outrigger", "path of the outrigger binary")
	fs.BoolVar(&o.skipOutrigger, "skip-outrigger", false, "run only the baselines (direct, proxy pair)")
	fs.IntVar(&o.concurrency, "c", 32, "connections (closed-loop workers)")
	fs.IntVar(&o.bodySize, "body", 1024, "request body size in bytes (the app echoes it)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured window per scenario")
	fs.IntVar(&o.rounds, "rounds", 1, "run the scenario sequence this many times, interleaved, and pool the windows (evens out background noise)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up per scenario (not measured)")
	fs.BoolVar(&o.quick, "quick", false, "short run: 2s per scenario, 500ms warm-up, 3 start-up runs, 1s settle")
	fs.Int64Var(&o.maxRequests, "max-requests", 20_000_000, "cap on requests per scenario (warm-up included)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout")
	fs.IntVar(&o.startupRuns, "startup-runs", 5, "sidecar start-up measurements (median reported)")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "idle time before reading the sidecar's RSS")
	fs.StringVar(&o.jsonOut, "json", "", "also write results as JSON to this file")
	fs.BoolVar(&o.strict, "strict", false, "exit non-zero when a goal is missed (errors always do)")
	suites := fs.String("suite", "all", "suites to run: all, or a comma-separated list of "+strings.Join(allSuites(), ","))
	fs.StringVar(&o.redisAddr, "redis", "127.0.0.1:6379", "Redis for the state, pub/sub and lock suites (loopback only)")
	fs.IntVar(&o.pubsubInFlight, "pubsub-inflight", 256, "pub/sub suite: most messages published but not yet delivered")
	if err := fs.Parse(args); err != nil {
		return o, usageError{err} // the flag set has already printed it with the usage
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, apply := range map[string]func(){
			"duration":     func() { o.duration = 2 * time.Second },
			"warmup":       func() { o.warmup = 500 * time.Millisecond },
			"startup-runs": func() { o.startupRuns = 3 },
			"settle":       func() { o.settle = time.Second },
		} {
			if !set[name] { // an explicit flag wins over -quick
				apply()
			}
		}
	}
	var err error
	if o.suites, err = parseSuites(*suites); err != nil {
		return o, err
	}
	if host, _, err := net.SplitHostPort(o.redisAddr); err != nil || (host != "127.0.0.1" && host != "localhost") {
		return o, fmt.Errorf("-redis %q: want 127.0.0.1:port (the bench stays on loopback)", o.redisAddr)
	}
	switch {
	case o.pubsubInFlight < 1 || o.pubsubInFlight > 100_000:
		return o, fmt.Errorf("-pubsub-inflight %d: want 1..100000", o.pubsubInFlight)
	case o.concurrency < 1 || o.concurrency > 4096:
		return o, fmt.Errorf("-c %d: want 1..4096", o.concurrency)
	case o.bodySize < 0 || o.bodySize > 64<<20:
		return o, fmt.Errorf("-body %d: want 0..64 MiB", o.bodySize)
	case o.duration <= 0 || o.duration > time.Hour:
		return o, fmt.Errorf("-duration %v: want (0, 1h]", o.duration)
	case o.warmup < 0 || o.warmup > time.Hour:
		return o, fmt.Errorf("-warmup %v: want [0, 1h]", o.warmup)
	case o.rounds < 1 || o.rounds > 100:
		return o, fmt.Errorf("-rounds %d: want 1..100", o.rounds)
	case o.maxRequests < 1:
		return o, fmt.Errorf("-max-requests %d: want ≥ 1", o.maxRequests)
	case o.timeout <= 0:
		return o, fmt.Errorf("-timeout %v: want > 0", o.timeout)
	case o.startupRuns < 1 || o.startupRuns > 100:
		return o, fmt.Errorf("-startup-runs %d: want 1..100", o.startupRuns)
	case o.settle < 0:
		return o, fmt.Errorf("-settle %v: want ≥ 0", o.settle)
	}
	return o, nil
}

// usageError is a flag error that has already been reported to the user.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// scenarioResult is one row of the table.
type scenarioResult struct {
	Name        string        `json:"name"`
	Path        string        `json:"path"`
	Requests    uint64        `json:"requests"`
	Errors      uint64        `json:"errors"`
	ErrSample   []string      `json:"error_sample,omitempty"`
	Window      time.Duration `json:"window_ns"`
	RPS         float64       `json:"requests_per_second"`
	P50         time.Duration `json:"p50_ns"`
	P90         time.Duration `json:"p90_ns"`
	P99         time.Duration `json:"p99_ns"`
	P999        time.Duration `json:"p999_ns"`
	Max         time.Duration `json:"max_ns"`
	Mean        time.Duration `json:"mean_ns"`
	ProxyCPU    time.Duration `json:"proxy_cpu_ns"`           // CPU of the scenario's proxy processes in the window
	ProxyCPU1k  float64       `json:"proxy_cpu_s_per_1k_req"` // CPU-seconds per 1000 successful requests
	ProxyCPUBy  []processCPU  `json:"proxy_cpu_by_process,omitempty"`
	AppCPU      time.Duration `json:"app_cpu_ns"`    // CPU of the echo app(s) in the window
	ClientCPU   time.Duration `json:"client_cpu_ns"` // CPU of the bench process (load generator) in the window
	ProxyPeakMB float64       `json:"proxy_peak_rss_mib,omitempty"`
	RoundRPS    []float64     `json:"round_requests_per_second"` // one entry per -rounds
	Capped      bool          `json:"capped,omitempty"`
}

// processCPU is one proxy process's share of a scenario's CPU.
type processCPU struct {
	Process string  `json:"process"`
	CPU1k   float64 `json:"cpu_s_per_1k_req"`
}

// scenario is something to load: a URL and the processes whose CPU counts as "proxy".
type scenario struct {
	name, path string
	url        string
	proxies    []*proc
	apps       []*proc
}

// measurement is one window of one scenario.
type measurement struct {
	load                        loadgen.Result
	proxyCPU, appCPU, clientCPU time.Duration
	perProxy                    []time.Duration // proxyCPU split by process, in scenario.proxies order
	proxyPeak                   uint64          // largest VmHWM among the proxies after the window
}

func runScenario(ctx context.Context, o options, body []byte, sc scenario) (measurement, error) {
	var m measurement
	var appBefore, selfBefore time.Duration
	var proxyBefore []time.Duration
	var snapErr error
	each := func(ps []*proc) []time.Duration {
		out := make([]time.Duration, len(ps))
		for i, p := range ps {
			d, err := procstat.CPU(p.Pid())
			if err != nil && snapErr == nil {
				snapErr = fmt.Errorf("%s: %w", p.name, err)
			}
			out[i] = d
		}
		return out
	}
	sum := func(ps []*proc) time.Duration {
		var total time.Duration
		for _, d := range each(ps) {
			total += d
		}
		return total
	}
	self := func() time.Duration {
		d, err := procstat.CPU(os.Getpid())
		if err != nil && snapErr == nil {
			snapErr = err
		}
		return d
	}
	lr, err := loadgen.Run(ctx, loadgen.Config{
		URL: sc.url, Body: body, WantBytes: len(body), Concurrency: o.concurrency,
		Warmup: o.warmup, Duration: o.duration, MaxRequests: o.maxRequests, Timeout: o.timeout,
		OnWindowStart: func() { proxyBefore, appBefore, selfBefore = each(sc.proxies), sum(sc.apps), self() },
		OnWindowEnd: func() {
			for i, d := range each(sc.proxies) {
				m.perProxy = append(m.perProxy, d-proxyBefore[i])
				m.proxyCPU += d - proxyBefore[i]
			}
			m.appCPU = sum(sc.apps) - appBefore
			m.clientCPU = self() - selfBefore
		},
	})
	if err != nil {
		return m, fmt.Errorf("scenario %s: %w", sc.name, err)
	}
	for _, p := range append(append([]*proc(nil), sc.proxies...), sc.apps...) {
		if exited, err := p.exitErr(); exited {
			return m, fmt.Errorf("scenario %s: %w; output: %s", sc.name, err, p.logs)
		}
	}
	if snapErr != nil {
		return m, fmt.Errorf("scenario %s: cpu snapshot: %w", sc.name, snapErr)
	}
	m.load = lr
	for _, p := range sc.proxies {
		if mem, err := procstat.Mem(p.Pid()); err == nil {
			m.proxyPeak = max(m.proxyPeak, mem.Peak)
		}
	}
	return m, nil
}

// summarize pools a scenario's windows (one per round): requests, errors, CPU and time are
// summed, latencies merged, so rates and quantiles are over every measured request.
func summarize(sc scenario, ms []measurement) scenarioResult {
	res := scenarioResult{Name: sc.name, Path: sc.path}
	h := loadgen.NewHistogram()
	for _, m := range ms {
		h.Merge(m.load.Latency)
		res.Errors += m.load.Errors
		res.Window += m.load.Window
		res.Capped = res.Capped || m.load.Capped
		res.ProxyCPU += m.proxyCPU
		res.AppCPU += m.appCPU
		res.ClientCPU += m.clientCPU
		res.ProxyPeakMB = max(res.ProxyPeakMB, float64(m.proxyPeak)/(1<<20))
		res.RoundRPS = append(res.RoundRPS, m.load.RPS())
		for _, e := range m.load.ErrSample {
			if len(res.ErrSample) < 5 && !slices.Contains(res.ErrSample, e) {
				res.ErrSample = append(res.ErrSample, e)
			}
		}
	}
	res.Requests = h.Count()
	if res.Requests > 0 {
		for i, p := range sc.proxies {
			var cpu time.Duration
			for _, m := range ms {
				cpu += m.perProxy[i]
			}
			res.ProxyCPUBy = append(res.ProxyCPUBy, processCPU{Process: p.name, CPU1k: cpu.Seconds() / (float64(res.Requests) / 1000)})
		}
	}
	if res.Window > 0 {
		res.RPS = float64(res.Requests) / res.Window.Seconds()
	}
	res.P50, res.P90, res.P99, res.P999 = h.Quantile(0.50), h.Quantile(0.90), h.Quantile(0.99), h.Quantile(0.999)
	res.Max, res.Mean = h.Max(), h.Mean()
	if len(sc.proxies) > 0 && res.Requests > 0 {
		res.ProxyCPU1k = res.ProxyCPU.Seconds() / (float64(res.Requests) / 1000)
	}
	return res
}

// report is everything one run measured (also the -json document).
type report struct {
	Started     time.Time        `json:"started"`
	GoVersion   string           `json:"go_version"`
	NumCPU      int              `json:"num_cpu"`
	Concurrency int              `json:"concurrency"`
	BodyBytes   int              `json:"body_bytes"`
	Warmup      time.Duration    `json:"warmup_ns"`
	Duration    time.Duration    `json:"duration_ns"`
	Rounds      int              `json:"rounds"`
	Outrigger   string           `json:"outrigger,omitempty"` // binary used; "" when skipped
	Skipped     string           `json:"outrigger_skipped,omitempty"`
	Scenarios   []scenarioResult `json:"scenarios"`
	Startup     *startupResult   `json:"startup,omitempty"`
	Ratios      *ratios          `json:"ratios,omitempty"` // scenario 3 ÷ scenario 4
	Goals       []goal           `json:"goals"`
	Suites      []*suiteReport   `json:"suites,omitempty"`        // every suite but invoke, in run order
	LoadStart   string           `json:"loadavg_start,omitempty"` // /proc/loadavg: other work on the machine skews figures
	LoadEnd     string           `json:"loadavg_end,omitempty"`
}

// loadAvg is the 1, 5 and 15 minute load averages, or "" when unknown.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// ratios compare Outrigger's two-hop path with the minimal proxy pair.
type ratios struct {
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
	Throughput float64 `json:"throughput"`
	CPUPerReq  float64 `json:"cpu_per_request"`
}

// goal is one performance target and whether this run met it.
type goal struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Target string `json:"target"`
	Met    *bool  `json:"met,omitempty"` // nil: not measured in this run
}

// run is the bench proper: start everything, measure, print, clean up.
func run(ctx context.Context, o options, stdout, stderr io.Writer) (*report, error) {
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	rep := &report{
		Started: time.Now(), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		Concurrency: o.concurrency, BodyBytes: o.bodySize, Warmup: o.warmup, Duration: o.duration, Rounds: o.rounds,
		LoadStart: loadAvg(),
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable to re-exec children: %w", err)
	}
	var l *launcher
	if o.skipOutrigger {
		rep.Skipped = "-skip-outrigger given"
	} else {
		var cleanup func()
		if l, cleanup, err = newLauncher(o.outrigger); err != nil {
			return nil, err
		}
		defer cleanup()
		rep.Outrigger = l.bin
	}

	var procs []*proc
	stopFrom := func(mark int) { // stops the processes started since mark, newest first
		for i := len(procs) - 1; i >= mark; i-- {
			procs[i].Stop(5 * time.Second)
		}
		procs = procs[:mark]
	}
	defer stopFrom(0)
	e := &env{o: o, l: l, self: self, progress: progress, track: func(p *proc) { procs = append(procs, p) },
		tag: fmt.Sprintf("outrigger-bench-%d", os.Getpid())}
	defer e.close()
	for _, name := range o.suites {
		mark := len(procs)
		if name == suiteInvoke {
			if err := runInvoke(ctx, e, rep, stdout); err != nil {
				return nil, err
			}
		} else {
			sr, err := runSuite(ctx, e, name)
			if err != nil {
				return nil, err
			}
			rep.Suites = append(rep.Suites, sr)
			printSuite(stdout, sr)
		}
		stopFrom(mark) // each suite's processes end with it, so they do not load the next
	}
	rep.LoadEnd = loadAvg()
	if len(rep.Suites) > 0 && rep.LoadStart != "" {
		fmt.Fprintf(stdout, "\nLoad average (1/5/15 min) at start %s, at end %s, on %d CPUs: anything above ~0.5 at start is other work skewing the figures.\n",
			rep.LoadStart, rep.LoadEnd, rep.NumCPU)
	}
	return rep, nil
}

// runInvoke is the invocation suite: scenarios 1-4, start-up time and idle RSS.
func runInvoke(ctx context.Context, e *env, rep *report, stdout io.Writer) error {
	o, l, progress := e.o, e.l, e.progress
	child := func(name, role string, args ...string) (*proc, string, error) {
		p, addr, err := startChild(ctx, e.self, name, role, args...)
		if err == nil {
			e.track(p)
		}
		return p, addr, err
	}

	progress("starting echo apps and the baseline proxy pair")
	appA, appAAddr, err := child("echo app A", cmdEcho)
	if err != nil {
		return err
	}
	appB, appBAddr, err := child("echo app B", cmdEcho)
	if err != nil {
		return err
	}
	proxy2, proxy2Addr, err := child("proxy 2", cmdProxy, "-target", "http://"+appBAddr)
	if err != nil {
		return err
	}
	proxy1, proxy1Addr, err := child("proxy 1", cmdProxy, "-target", "http://"+proxy2Addr)
	if err != nil {
		return err
	}

	body := letters(o.bodySize)
	scenarios := []scenario{{name: "1 direct", path: "client → app", url: "http://" + appBAddr + "/echo", apps: []*proc{appB}}}

	if l != nil {
		appAPort, err := portOf(appAAddr)
		if err != nil {
			return err
		}
		appBPort, err := portOf(appBAddr)
		if err != nil {
			return err
		}
		progress("measuring sidecar start-up (%d runs) and idle memory", o.startupRuns)
		st, err := measureStartup(ctx, l, appAPort, o.startupRuns, o.settle, progress)
		if err != nil {
			return err
		}
		rep.Startup = &st

		progress("starting sidecars A and B")
		sa, sb, err := startPair(ctx, l, appAPort, appBPort, body, e.track)
		if err != nil {
			return err
		}
		scenarios = append(scenarios,
			scenario{name: "2 sidecar-local", path: "client → sidecar A → app A",
				url: sa.url("/v1.0/invoke/" + sa.appID + "/method/echo"), proxies: []*proc{sa.proc}, apps: []*proc{appA}},
			scenario{name: "3 sidecar-2hop", path: "client → sidecar A → sidecar B → app B",
				url: sa.url("/v1.0/invoke/" + sb.appID + "/method/echo"), proxies: []*proc{sa.proc, sb.proc}, apps: []*proc{appB}},
		)
	} else {
		progress("Outrigger scenarios (2, 3), start-up time and idle RSS SKIPPED: %s", rep.Skipped)
	}
	scenarios = append(scenarios, scenario{name: "4 proxy-2hop", path: "client → proxy 1 → proxy 2 → app B",
		url: "http://" + proxy1Addr + "/echo", proxies: []*proc{proxy1, proxy2}, apps: []*proc{appB}})

	windows := make([][]measurement, len(scenarios))
	for round := 1; round <= o.rounds; round++ {
		for i, sc := range scenarios {
			progress("round %d/%d, scenario %s: %s  (%d conns, %v warm-up + %v)", round, o.rounds, sc.name, sc.path, o.concurrency, o.warmup, o.duration)
			m, err := runScenario(ctx, o, body, sc)
			if err != nil {
				return err
			}
			windows[i] = append(windows[i], m)
		}
	}
	for i, sc := range scenarios {
		rep.Scenarios = append(rep.Scenarios, summarize(sc, windows[i]))
	}
	rep.computeGoals()
	printReport(stdout, rep)
	return nil
}

// newLauncher checks the outrigger binary and prepares a private, empty environment for the
// sidecars; cleanup removes it.
func newLauncher(binPath string) (*launcher, func(), error) {
	bin, err := filepath.Abs(binPath)
	if err != nil {
		return nil, nil, fmt.Errorf("-outrigger %q: %w", binPath, err)
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, nil, fmt.Errorf("outrigger binary %s not found or not executable: run `make build` first, or pass -skip-outrigger to measure only the baselines", bin)
	}
	tmp, err := os.MkdirTemp("", "outrigger-bench-")
	if err != nil {
		return nil, nil, fmt.Errorf("temp dir for the sidecars: %w", err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	l := &launcher{bin: bin, dir: tmp, home: filepath.Join(tmp, "home"), resources: filepath.Join(tmp, "resources"),
		sockets: filepath.Join(tmp, "sockets"), plugins: filepath.Join(filepath.Dir(bin), "plugins"), ports: &portPicker{used: map[int]bool{}}}
	for _, d := range []string{l.home, l.resources, l.sockets} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("temp dir for the sidecars: %w", err)
		}
	}
	return l, cleanup, nil
}

// startPair starts sidecar A (app A, first gossip member) and sidecar B (app B, joining A), and
// returns once both are healthy and A can invoke its own app and B's. track receives every
// started process, so the caller stops them even when this fails half-way.
func startPair(ctx context.Context, l *launcher, appAPort, appBPort int, body []byte, track func(*proc)) (sa, sb *sidecar, err error) {
	pid := os.Getpid()
	sa, err = l.start(sidecarSpec{appID: fmt.Sprintf("bench-a-%d", pid), appPort: appAPort})
	if err != nil {
		return nil, nil, err
	}
	track(sa.proc)
	if _, err := waitStatus(ctx, sa.proc, sa.url("/v1.0/healthz"), http.StatusNoContent, 5*time.Millisecond, 20*time.Second); err != nil {
		return nil, nil, err
	}
	sb, err = l.start(sidecarSpec{appID: fmt.Sprintf("bench-b-%d", pid), appPort: appBPort, gossipJoin: sa.gossipAddr()})
	if err != nil {
		return nil, nil, err
	}
	track(sb.proc)
	if _, err := waitStatus(ctx, sb.proc, sb.url("/v1.0/healthz"), http.StatusNoContent, 5*time.Millisecond, 20*time.Second); err != nil {
		return nil, nil, err
	}
	if err := waitInvoke(ctx, sa, sa.appID, body, 20*time.Second); err != nil {
		return nil, nil, err
	}
	if err := waitInvoke(ctx, sa, sb.appID, body, 30*time.Second); err != nil {
		return nil, nil, err
	}
	return sa, sb, nil
}

// portOf returns the port of a "127.0.0.1:port" address a child announced.
func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("child address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return 0, fmt.Errorf("child address %q: %w", addr, err)
	}
	return port, nil
}
