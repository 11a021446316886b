package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// ---------------------------------------------------------------- sidecars

// cluster starts the sidecars of one test, which share an e2etest.Cluster
// (a private gossip port and OUTRIGGER_HOME).
type cluster struct {
	t *testing.T
	e2etest.Cluster
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return &cluster{t: t, Cluster: e2etest.NewCluster(t)}
}

type sidecarOpts struct {
	appID       string
	appPort     int
	appProtocol string   // "" = http
	env         []string // extra KEY=VALUE
	args        []string // extra flags
}

// sidecar is one running `outrigger sidecar` process.
type sidecar struct {
	*e2etest.Sidecar
	appID                           string
	httpPort, grpcPort, metricsPort int
}

// start launches a sidecar and waits until GET /v1.0/healthz answers 204.
func (c *cluster) start(o sidecarOpts) *sidecar {
	c.t.Helper()
	s := c.launch(o)
	s.WaitHealthy(c.t, 15*time.Second)
	return s
}

// launch starts a sidecar without waiting for readiness.
func (c *cluster) launch(o sidecarOpts) *sidecar {
	c.t.Helper()
	proto := o.appProtocol
	if proto == "" {
		proto = "http"
	}
	args := append([]string{"--app-port", strconv.Itoa(o.appPort), "--app-protocol", proto}, o.args...)
	s := e2etest.LaunchSidecar(c.t, e2etest.SidecarConfig{Bin: outriggerBin, AppID: o.appID, Home: c.Home,
		GossipPort: c.GossipPort, Args: args, Env: o.env, Proc: e2etest.ProcOptions{
			StopTimeout: 5 * time.Second,
			// Connections the client pool dialed but never used sit in net/http's
			// StateNew, which (*http.Server).Shutdown waits up to 5 s for; close them.
			BeforeStop: httpc.CloseIdleConnections,
			SlowStop:   2 * time.Second,
		}})
	return &sidecar{Sidecar: s, appID: s.AppID, httpPort: s.HTTPPort, grpcPort: s.GRPCPort, metricsPort: s.MetricsPort}
}

// ---------------------------------------------------------------- HTTP client

// httpc is the test's HTTP client: no proxy from the environment, no redirects.
var httpc = &http.Client{
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// call does one request with a deadline and reads the whole answer.
func call(t *testing.T, method, url string, hdr http.Header, body []byte) result {
	t.Helper()
	r, err := tryCall(method, url, hdr, body, 20*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func tryCall(method, url string, hdr http.Header, body []byte, timeout time.Duration) (result, error) {
	r, err := e2etest.Request(httpc, method, url, hdr, body, timeout)
	return result{status: r.Status, header: r.Header, body: r.Body}, err
}

// daprError is Dapr's JSON error body.
type daprError = e2etest.DaprError

func decodeDaprError(t *testing.T, r result) daprError {
	t.Helper()
	var e daprError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("error body is not Dapr's JSON error: %v; body %q (Content-Type %q)", err, r.body, r.header.Get("Content-Type"))
	}
	return e
}

// ---------------------------------------------------------------- HTTP app

// echoReply is what the test HTTP app answers on any path it has no special
// handler for: everything it saw of the request.
type echoReply struct {
	App        string      `json:"app"`
	Method     string      `json:"method"`
	Path       string      `json:"path"`
	RawQuery   string      `json:"rawQuery"`
	Header     http.Header `json:"header"`
	Body       string      `json:"body"`
	Host       string      `json:"host"`
	RemoteAddr string      `json:"remoteAddr"`
}

type httpApp struct {
	name string
	port int
}

// startHTTPApp serves the test app on a free loopback port until the test ends.
//
//	/status/{code}  answers that status with header X-App-Reply and body "app <name> says <code>"
//	/hash           answers {"app","sha256","bytes"} of the request body
//	/big?n=N&seed=S streams N deterministic bytes (octet-stream, with Content-Length)
//	/slow           sends one server-sent event, flushes, and sends a second one 3 s later
//	anything else   answers an echoReply as JSON, plus headers X-Echo-App and X-Echo-Method
func startHTTPApp(t *testing.T, name string) *httpApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("app %s: listen: %v", name, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil {
			code = http.StatusBadRequest
		}
		w.Header().Set("X-App-Reply", name)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		fmt.Fprintf(w, "app %s says %d", name, code)
	})
	mux.HandleFunc("/hash", func(w http.ResponseWriter, r *http.Request) {
		h := newHasher()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"app": name, "sha256": h.sum(), "bytes": n})
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		seed, _ := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		bw := bufio.NewWriterSize(w, 64<<10)
		io.Copy(bw, dataReader(seed, n))
		bw.Flush()
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select { // the second event comes late: the caller must see the first one before
		case <-r.Context().Done():
			return
		case <-time.After(3 * time.Second):
		}
		io.WriteString(w, "data: second\n\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-App", name)
		w.Header().Set("X-Echo-Method", r.Method)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoReply{App: name, Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Header: r.Header, Body: string(b), Host: r.Host, RemoteAddr: r.RemoteAddr})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &httpApp{name: name, port: ln.Addr().(*net.TCPAddr).Port}
}

func decodeEcho(t *testing.T, r result) echoReply {
	t.Helper()
	var e echoReply
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("answer is not the app's echo (status %d): %v; body %.300q", r.status, err, r.body)
	}
	return e
}

// waitInvoke polls an invocation from s to target until every app in wantApps
// has answered (gossip has converged), failing after deadline.
func waitInvoke(t *testing.T, s *sidecar, target string, wantApps ...string) {
	t.Helper()
	waitInvokeWith(t, s, nil, target, wantApps...)
}

// waitInvokeWith is waitInvoke with extra request headers (e.g. the API token).
func waitInvokeWith(t *testing.T, s *sidecar, hdr http.Header, target string, wantApps ...string) {
	t.Helper()
	seen := map[string]bool{}
	end := time.Now().Add(15 * time.Second)
	last := ""
	for {
		r, err := tryCall(http.MethodPost, s.URL("/v1.0/invoke/"+target+"/method/ping"), hdr, []byte("ping"), 2*time.Second)
		if err == nil && r.status == http.StatusOK {
			var e echoReply
			if json.Unmarshal(r.body, &e) == nil {
				seen[e.App] = true
			}
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %.200q", r.status, r.body)
		}
		all := true
		for _, a := range wantApps {
			all = all && seen[a]
		}
		if all {
			return
		}
		if s.Exited() {
			t.Fatalf("sidecar %s exited while waiting to reach %s: %v", s.appID, target, s.Err())
		}
		if time.Now().After(end) {
			t.Fatalf("%s could not reach all of %v behind app id %s within 15 s (seen %v; last: %s)", s.appID, wantApps, target, seen, last)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// ---------------------------------------------------------------- data and memory

// dataReader is n deterministic pseudo-random bytes from seed.
func dataReader(seed uint64, n int64) io.Reader {
	var s [32]byte
	for i := range 4 {
		s[i*8] = byte(seed >> (8 * i))
	}
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// vmRSS reads a process's resident set size in bytes from /proc/<pid>/status.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// rssPeaks samples the VmRSS of pids every 5 ms until stop is called, and
// returns the peak of each and the number of samples.
func rssPeaks(pids ...int) (stop func() (peaks map[int]int64, samples int)) {
	peaks := map[int]int64{}
	samples := 0
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, p := range pids {
				if v, err := vmRSS(p); err == nil && v > peaks[p] {
					peaks[p] = v
				}
			}
			samples++
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (map[int]int64, int) {
		close(quit)
		<-done
		return peaks, samples
	}
}
