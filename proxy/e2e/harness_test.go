package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------- ports

// reservedPorts keeps the ports handed out in this test process, so parallel
// tests never pick the same "free" port between probing and the sidecar's bind.
var reservedPorts = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// freePort returns a loopback port that is free for TCP and UDP (gossip uses both).
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

// ---------------------------------------------------------------- sidecars

// cluster is the sidecars of one test: one private gossip rendezvous port and
// one private OUTRIGGER_HOME, so they see each other and nothing else.
type cluster struct {
	t          *testing.T
	home       string
	gossipPort int
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return &cluster{t: t, home: t.TempDir(), gossipPort: freePort(t)}
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
	appID                           string
	httpPort, grpcPort, metricsPort int
	cmd                             *exec.Cmd
	out                             *syncBuffer
	done                            chan struct{} // closed when the process has exited
	waitErr                         error         // valid after done
}

// syncBuffer collects a process's output from two pipes.
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

// start launches a sidecar and waits until GET /v1.0/healthz answers 204.
func (c *cluster) start(o sidecarOpts) *sidecar {
	c.t.Helper()
	s := c.launch(o)
	s.waitStatus(c.t, "/v1.0/healthz", http.StatusNoContent, 15*time.Second)
	return s
}

// launch starts a sidecar without waiting for readiness.
func (c *cluster) launch(o sidecarOpts) *sidecar {
	t := c.t
	t.Helper()
	s := &sidecar{appID: o.appID, httpPort: freePort(t), grpcPort: freePort(t), metricsPort: freePort(t),
		out: &syncBuffer{}, done: make(chan struct{})}
	proto := o.appProtocol
	if proto == "" {
		proto = "http"
	}
	args := []string{"sidecar",
		"--app-id", o.appID,
		"--app-port", strconv.Itoa(o.appPort),
		"--app-protocol", proto,
		"--dapr-http-port", strconv.Itoa(s.httpPort),
		"--dapr-grpc-port", strconv.Itoa(s.grpcPort),
		"--metrics-port", strconv.Itoa(s.metricsPort),
		"--dapr-internal-grpc-port", "0",
		"--admin-port", "0",
		"--gossip-port", strconv.Itoa(c.gossipPort),
		"--log-level", "info",
	}
	args = append(args, o.args...)
	s.cmd = exec.Command(outriggerBin, args...)
	s.cmd.Env = append(os.Environ(), "OUTRIGGER_HOME="+c.home)
	s.cmd.Env = append(s.cmd.Env, o.env...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sidecar %s: %v", o.appID, err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		start := time.Now()
		s.stop()
		if d := time.Since(start); d > 2*time.Second {
			out := s.out.String()
			if i := strings.LastIndex(out, "shutting down"); i > 0 {
				out = out[strings.LastIndex(out[:i], "\n")+1:]
			}
			t.Logf("sidecar %s took %v to exit after SIGTERM; its shutdown log:\n%s", s.appID, d.Round(time.Millisecond), out)
		}
		if t.Failed() {
			t.Logf("---- output of sidecar %s (pid %d, http %d, grpc %d) ----\n%s", s.appID, s.cmd.Process.Pid, s.httpPort, s.grpcPort, s.out)
		}
	})
	return s
}

// stop ends the process: SIGTERM, then SIGKILL if it has not left after 5 s.
func (s *sidecar) stop() {
	if s.exited() {
		return
	}
	// Connections the client pool dialed but never used sit in net/http's
	// StateNew, which (*http.Server).Shutdown waits up to 5 s for; close them.
	httpc.CloseIdleConnections()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *sidecar) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

func (s *sidecar) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *sidecar) pid() int { return s.cmd.Process.Pid }

func (s *sidecar) url(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.httpPort) + path
}

func (s *sidecar) grpcAddr() string { return "127.0.0.1:" + strconv.Itoa(s.grpcPort) }

// waitStatus polls GET path until it answers want, failing the test after deadline
// or when the process exits.
func (s *sidecar) waitStatus(t *testing.T, path string, want int, deadline time.Duration) {
	t.Helper()
	cl := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer cl.CloseIdleConnections()
	end := time.Now().Add(deadline)
	last := ""
	for {
		resp, err := cl.Get(s.url(path))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if s.exited() {
			t.Fatalf("sidecar %s exited before GET %s answered %d: %v", s.appID, path, want, s.waitErr)
		}
		if time.Now().After(end) {
			t.Fatalf("sidecar %s: GET %s did not answer %d within %v (last: %s)", s.appID, path, want, deadline, last)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
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

// daprError is Dapr's JSON error body.
type daprError struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

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
		r, err := tryCall(http.MethodPost, s.url("/v1.0/invoke/"+target+"/method/ping"), hdr, []byte("ping"), 2*time.Second)
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
		if s.exited() {
			t.Fatalf("sidecar %s exited while waiting to reach %s: %v", s.appID, target, s.waitErr)
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
