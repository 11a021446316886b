package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// goalPolicyCost: the two-hop invocation with a resiliency policy and tracing at sampling 1
// keeps at least 85% of the throughput with both off (issue 7).
const goalPolicyCost = 0.85

// zipkinCollector is a minimal Zipkin v2 endpoint: it accepts POST /api/v2/spans (a JSON array)
// and counts the spans. It runs on the bench's own cores, where a real collector would not, so it
// does as little as counting allows (countSpans), not a JSON decode.
type zipkinCollector struct {
	srv     *http.Server
	url     string
	spans   atomic.Int64
	batches atomic.Int64
	bufs    sync.Pool
}

func startZipkin() (*zipkinCollector, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("zipkin collector: listen: %w", err)
	}
	z := &zipkinCollector{url: "http://" + ln.Addr().String() + "/api/v2/spans"}
	z.bufs.New = func() any { return new(bytes.Buffer) }
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/spans", func(w http.ResponseWriter, r *http.Request) {
		buf := z.bufs.Get().(*bytes.Buffer)
		defer z.bufs.Put(buf)
		buf.Reset()
		if _, err := buf.ReadFrom(r.Body); err != nil {
			http.Error(w, "spans: "+err.Error(), http.StatusBadRequest)
			return
		}
		n, err := countSpans(buf.Bytes())
		if err != nil {
			http.Error(w, "spans: "+err.Error(), http.StatusBadRequest)
			return
		}
		z.spans.Add(int64(n))
		z.batches.Add(1)
		w.WriteHeader(http.StatusAccepted)
	})
	z.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go z.srv.Serve(ln) //nolint:errcheck // ends with Close
	return z, nil
}

// countSpans counts the spans of a Zipkin v2 POST body (a JSON array of span objects) by their
// "traceId" keys: every span has exactly one, and the sequence cannot occur inside a JSON string
// (its quotes would be escaped). The suite checks the total against the spans the sidecars report
// creating, so a miscount cannot pass unnoticed.
func countSpans(b []byte) (int, error) {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return 0, errors.New("want a JSON array of spans")
	}
	return bytes.Count(b, []byte(`"traceId":`)), nil
}

// waitFor waits until at least want spans have arrived, at most within, and returns the count.
// The exporters send a partial batch only every few seconds, so within must exceed that.
func (z *zipkinCollector) waitFor(ctx context.Context, want int64, within time.Duration) int64 {
	end := time.Now().Add(within)
	for z.spans.Load() < want && time.Now().Before(end) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	return z.spans.Load()
}

// settle waits until no span has arrived for quiet (exporters batch), at most within.
func (z *zipkinCollector) settle(ctx context.Context, quiet, within time.Duration) int64 {
	end := time.Now().Add(within)
	last, lastChange := z.spans.Load(), time.Now()
	for time.Now().Before(end) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		if n := z.spans.Load(); n != last {
			last, lastChange = n, time.Now()
		} else if last > 0 && time.Since(lastChange) >= quiet {
			break
		}
	}
	return z.spans.Load()
}

// tracedCalls is how many spans the traced pair has created, from the sidecars' own metrics:
// every invocation the caller served over HTTP (one client span each) and every call the callee
// received from another sidecar (one server span each, retried attempts included).
func tracedCalls(ctx context.Context, caller, callee *sidecar) (int64, error) {
	a, err := scrapeCounter(ctx, caller, "dapr_http_server_request_count", `path="/v1.0/invoke/`)
	if err != nil {
		return 0, err
	}
	b, err := scrapeCounter(ctx, callee, "dapr_runtime_service_invocation_req_recv_total", "")
	if err != nil {
		return 0, err
	}
	return a + b, nil
}

// scrapeCounter sums the series of a Prometheus counter on s's metrics endpoint whose labels
// contain labelPart ("" for all).
func scrapeCounter(ctx context.Context, s *sidecar, name, labelPart string) (int64, error) {
	port, err := metricsPort(s.Pid())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", s.name, err)
	}
	resp, err := httpClient(1, 5*time.Second).Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", s.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape %s: status %d, %v", s.name, resp.StatusCode, err)
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if labelPart != "" && !strings.Contains(line[:sp], labelPart) {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("scrape %s: %q: %w", s.name, line, err)
		}
		sum += v
	}
	return int64(sum), nil
}

// metricsPort reads the --metrics-port the bench gave the sidecar process pid.
func metricsPort(pid int) (int, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, fmt.Errorf("metrics port: %w", err)
	}
	args := strings.Split(string(raw), "\x00")
	for i, a := range args {
		if a == "--metrics-port" && i+1 < len(args) {
			return strconv.Atoi(args[i+1])
		}
	}
	return 0, errors.New("metrics port: no --metrics-port argument")
}

func resiliencyYAML(targetApp string) string {
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: bench-resiliency
spec:
  policies:
    retries:
      benchRetry:
        policy: constant
        duration: 10ms
        maxRetries: 3
    circuitBreakers:
      benchBreaker:
        maxRequests: 1
        interval: 10s
        timeout: 30s
        trip: consecutiveFailures > 50
  targets:
    apps:
      %s:
        retry: benchRetry
        circuitBreaker: benchBreaker
`, targetApp)
}

func tracingConfigYAML(endpoint string) string {
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: bench-tracing
spec:
  tracing:
    samplingRate: "1"
    zipkin:
      endpointAddress: %q
`, endpoint)
}

// runResiliency measures the invocation two-hop scenario with a Resiliency policy (retry +
// circuit breaker on the target app) and tracing at sampling 1 to an in-process Zipkin
// collector, next to the same path with both off.
func runResiliency(ctx context.Context, e *env) (*suiteReport, error) {
	o := e.o
	s := &suiteReport{Name: suiteResiliency, Title: fmt.Sprintf("Outrigger resiliency/tracing benchmark: client → sidecar A → sidecar B → app, %d connections, %d-byte bodies", o.concurrency, o.bodySize)}
	app, appAddr, err := startChild(ctx, e.self, "echo app (resiliency)", cmdEcho)
	if err != nil {
		return nil, err
	}
	e.track(app)
	appPort, err := portOf(appAddr)
	if err != nil {
		return nil, err
	}
	zc, err := startZipkin()
	if err != nil {
		return nil, err
	}
	defer zc.srv.Close()

	offID, onID := e.tag+"-res-off-b", e.tag+"-res-on-b"
	resOn, err := e.writeResources("resiliency", map[string]string{"resiliency.yaml": resiliencyYAML(onID)})
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(resOn, "..", filepath.Base(resOn)+"-config.yaml")
	if err := os.WriteFile(cfg, []byte(tracingConfigYAML(zc.url)), 0o644); err != nil {
		return nil, fmt.Errorf("tracing configuration: %w", err)
	}
	body := letters(o.bodySize)
	pair := func(label, bID, resources, config string) (*sidecar, *sidecar, error) {
		e.progress("resiliency: starting sidecar pair %q", label)
		a, err := e.startSidecar(ctx, sidecarSpec{appID: e.tag + "-res-" + label + "-a", resources: resources, config: config})
		if err != nil {
			return nil, nil, err
		}
		b, err := e.startSidecar(ctx, sidecarSpec{appID: bID, appPort: appPort, gossipJoin: a.gossipAddr(), resources: resources, config: config})
		if err != nil {
			return nil, nil, err
		}
		if err := waitInvoke(ctx, a, bID, body, 30*time.Second); err != nil {
			return nil, nil, err
		}
		return a, b, nil
	}
	offA, offB, err := pair("off", offID, "", "")
	if err != nil {
		return nil, err
	}
	onA, onB, err := pair("on", onID, resOn, cfg)
	if err != nil {
		return nil, err
	}

	// Probe: the app fails a token's first call; with the retry policy applied, the caller sees 200.
	wiredOn, err := flakyProbe(ctx, onA, onID, "on")
	if err != nil {
		return nil, err
	}
	wiredOff, err := flakyProbe(ctx, offA, offID, "off")
	if err != nil {
		return nil, err
	}
	label, path := "2hop tracing+resiliency", "retry+breaker on the app, sampling 1 → zipkin"
	switch {
	case wiredOff:
		e.note(s, "WARNING: the pair WITHOUT a policy also retried the flaky call (built-in retries?); the probe cannot tell whether the policy is applied")
	case !wiredOn:
		label, path = "2hop tracing only", "sampling 1 → zipkin (policy loaded, not applied)"
		e.note(s, "RESILIENCY NOT WIRED: the Resiliency policy (retry + breaker on app %s) is loaded but a failing call was not retried; measuring TRACING ONLY", onID)
	default:
		e.note(s, "resiliency probe: a call failing once was retried to success through the policy (wired)")
	}
	spansBefore := zc.settle(ctx, time.Second, 3*time.Second)

	scs := []scenario{
		{name: "2hop off", path: "no policy, no tracing", url: offA.url("/v1.0/invoke/" + offID + "/method/echo"), proxies: []*proc{offA.proc, offB.proc}, apps: []*proc{app}},
		{name: label, path: path, url: onA.url("/v1.0/invoke/" + onID + "/method/echo"), proxies: []*proc{onA.proc, onB.proc}, apps: []*proc{app}},
	}
	windows := make([][]measurement, len(scs))
	for round := 1; round <= o.rounds; round++ {
		for i, sc := range scs {
			e.progress("resiliency: round %d/%d, %s  (%d conns, %v warm-up + %v)", round, o.rounds, sc.name, o.concurrency, o.warmup, o.duration)
			m, err := runScenario(ctx, o, body, sc)
			if err != nil {
				return nil, err
			}
			windows[i] = append(windows[i], m)
		}
	}
	for i, sc := range scs {
		r := summarize(sc, windows[i])
		s.Rows = append(s.Rows, opRow{Name: r.Name, Path: r.Path, Concurrency: o.concurrency, Requests: r.Requests, Errors: r.Errors,
			ErrSample: r.ErrSample, Window: r.Window, RPS: r.RPS, P50: r.P50, P99: r.P99, Max: r.Max, CPU1k: r.ProxyCPU1k})
	}
	// Every span the traced pair created must reach the collector: the exporters' queues drop
	// spans silently when they overflow, which would make tracing look cheaper than it is.
	created, err := tracedCalls(ctx, onA, onB)
	if err != nil {
		return nil, err
	}
	received := zc.waitFor(ctx, created, 20*time.Second)
	spans := received - spansBefore
	on := s.row(label)
	if spans == 0 {
		e.note(s, "TRACING EXPORTED NOTHING: the Zipkin collector received no spans from the traced pair")
	} else if on != nil && on.Requests > 0 {
		on.Note = fmt.Sprintf("%d spans exported (%.1f per request, warm-up included)", spans, float64(spans)/float64(on.Requests))
	}
	if received != created {
		e.note(s, "SPANS LOST OR MISCOUNTED: the collector received %d spans; the traced pair created %d", received, created)
	}
	s.Goals = append(s.Goals, throughputGoal(label+" vs off: throughput", on, s.row("2hop off"), goalPolicyCost))
	allSpans := received == created
	s.Goals = append(s.Goals, goal{Name: "spans received by the collector / created", Value: fmt.Sprintf("%d / %d", received, created), Target: "all", Met: &allSpans})
	if off := s.row("2hop off"); on != nil && off != nil && off.P50 > 0 {
		s.Goals = append(s.Goals,
			goal{Name: label + " vs off: p50", Value: ratio(float64(on.P50) / float64(off.P50)), Target: "(reported)"},
			goal{Name: label + " vs off: p99", Value: ratio(float64(on.P99) / float64(off.P99)), Target: "(reported)"})
	}
	return s, nil
}

// flakyProbe invokes the app's /flaky method (which fails each token's first call) through a and
// reports whether the caller got the echo (the failure was retried) or the failure.
func flakyProbe(ctx context.Context, a *sidecar, target, token string) (bool, error) {
	url := a.url("/v1.0/invoke/" + target + "/method/flaky?token=" + token)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte("probe")))
	if err != nil {
		return false, fmt.Errorf("resiliency probe: %w", err)
	}
	resp, err := httpClient(1, 10*time.Second).Do(req)
	if err != nil {
		return false, fmt.Errorf("resiliency probe via %s: %w", a.name, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK && string(b) == "probe":
		return true, nil
	case resp.StatusCode >= 500:
		return false, nil
	default:
		return false, fmt.Errorf("resiliency probe via %s: unexpected status %d: %.200s", a.name, resp.StatusCode, b)
	}
}
