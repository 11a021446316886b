package resiliencye2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
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
	appID     string
	appPort   int    // 0 = no app
	resources string // --resources-path, "" = none
	config    string // --config, "" = none
	args      []string
}

// sidecar is one running `outrigger sidecar` process.
type sidecar struct {
	*e2etest.Sidecar
	appID                           string
	home                            string
	httpPort, grpcPort, metricsPort int
}

// start launches a sidecar and waits until GET /v1.0/healthz answers 204.
func (c *cluster) start(o sidecarOpts) *sidecar {
	c.t.Helper()
	s := c.launch(o)
	s.WaitHealthy(c.t, 20*time.Second)
	return s
}

// launch starts a sidecar without waiting for it.
func (c *cluster) launch(o sidecarOpts) *sidecar {
	c.t.Helper()
	var args []string
	if o.appPort > 0 {
		args = append(args, "--app-port", strconv.Itoa(o.appPort), "--app-protocol", "http")
	}
	if o.resources != "" {
		args = append(args, "--resources-path", o.resources)
	}
	if o.config != "" {
		args = append(args, "--config", o.config)
	}
	s := e2etest.LaunchSidecar(c.t, e2etest.SidecarConfig{Bin: outrigger, AppID: o.appID, Home: c.Home, GossipPort: c.GossipPort,
		Args: append(args, o.args...), Proc: e2etest.ProcOptions{StopTimeout: 5 * time.Second, BeforeStop: httpc.CloseIdleConnections}})
	return &sidecar{Sidecar: s, appID: s.AppID, home: s.Home, httpPort: s.HTTPPort, grpcPort: s.GRPCPort, metricsPort: s.MetricsPort}
}

// regEntry is the sidecar's host registry record (OUTRIGGER_HOME/run/<app-id>-<pid>.json).
type regEntry struct {
	AdminPort        int `json:"adminPort"`
	InternalGRPCPort int `json:"internalGrpcPort"`
}

// registry reads the sidecar's host registry record, waiting for it.
func (s *sidecar) registry(t *testing.T) regEntry {
	t.Helper()
	path := filepath.Join(s.home, "run", fmt.Sprintf("%s-%d.json", s.appID, s.Cmd.Process.Pid))
	end := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		var e regEntry
		if err == nil {
			if err = json.Unmarshal(b, &e); err == nil && e.AdminPort > 0 {
				return e
			}
		}
		if time.Now().After(end) {
			t.Fatalf("sidecar %s: no adminPort in %s within 10 s (last read: %v, %q)", s.appID, path, err, b)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// adminPort is the sidecar's admin port, from its host registry record.
func (s *sidecar) adminPort(t *testing.T) int { t.Helper(); return s.registry(t).AdminPort }

// admin GETs an admin page as JSON into v.
func (s *sidecar) admin(t *testing.T, page string, v any) {
	t.Helper()
	url := "http://127.0.0.1:" + strconv.Itoa(s.adminPort(t)) + "/" + page
	r, err := tryCall(http.MethodGet, url, nil, 5*time.Second)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("GET %s: %v; body %s", url, err, r.body)
	}
}

// metric returns the value of the first sample of name whose labels contain
// every label="value" pair in labels, and whether there is one.
func (s *sidecar) metric(t *testing.T, name string, labels ...string) (float64, bool) {
	t.Helper()
	url := "http://127.0.0.1:" + strconv.Itoa(s.metricsPort) + "/metrics"
	r, err := tryCall(http.MethodGet, url, nil, 5*time.Second)
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("GET %s: %v %d", url, err, r.status)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return f, true
	}
	return 0, false
}

// ---------------------------------------------------------------- HTTP client

var httpc = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}

type result struct {
	status  int
	body    []byte
	elapsed time.Duration
}

func tryCall(method, url string, body []byte, timeout time.Duration) (result, error) {
	r, err := e2etest.Request(httpc, method, url, nil, body, timeout)
	return result{status: r.Status, body: r.Body, elapsed: r.Elapsed}, err
}

// invoke calls method on target through s's HTTP API.
func invoke(t *testing.T, s *sidecar, target, method string) result {
	t.Helper()
	r, err := tryCall(http.MethodPost, s.URL("/v1.0/invoke/"+target+"/method/"+method), []byte("x"), 30*time.Second)
	if err != nil {
		t.Fatalf("invoke %s/%s through %s: %v", target, method, s.appID, err)
	}
	return r
}

// daprError is Dapr's JSON error body.
type daprError = e2etest.DaprError

func decodeDaprError(t *testing.T, r result) daprError {
	t.Helper()
	var e daprError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("answer is not Dapr's JSON error (status %d): %v; body %q", r.status, err, r.body)
	}
	return e
}

// waitReach invokes target's /ping through s until every app named in want
// has answered (gossip has converged).
func waitReach(t *testing.T, s *sidecar, target string, want ...string) {
	t.Helper()
	seen := map[string]bool{}
	end := time.Now().Add(20 * time.Second)
	last := ""
	for {
		r, err := tryCall(http.MethodPost, s.URL("/v1.0/invoke/"+target+"/method/ping"), nil, 3*time.Second)
		if err == nil && r.status == http.StatusOK {
			seen[string(r.body)] = true
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %.200q", r.status, r.body)
		}
		all := true
		for _, a := range want {
			all = all && seen[a]
		}
		if all {
			return
		}
		if s.Exited() {
			t.Fatalf("sidecar %s exited while waiting to reach %s: %v", s.appID, target, s.Err())
		}
		if time.Now().After(end) {
			t.Fatalf("%s could not reach all of %v behind %s within 20 s (seen %v; last: %s)", s.appID, want, target, seen, last)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// ---------------------------------------------------------------- test app

// app is a test HTTP app: /ping answers 200 with the app's name; /work/…
// is counted and answered by the handler; anything else (the sidecar's own
// /dapr/subscribe, /dapr/config …) is 404.
type app struct {
	name string
	port int
	hits atomic.Int64
}

func startApp(t *testing.T, name string, h http.HandlerFunc) *app {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("app %s: listen: %v", name, err)
	}
	a := &app{name: name, port: ln.Addr().(*net.TCPAddr).Port}
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })
	mux.HandleFunc("/", http.NotFound)
	mux.HandleFunc("/work/", func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		h(w, r)
		_, _ = io.Copy(io.Discard, r.Body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return a
}

// status answers code with the app's name as body.
func status(name string, code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, name)
	}
}

// ---------------------------------------------------------------- manifests

// writeResources writes the manifests (joined as one multi-document file
// named file) into a new directory and returns the directory.
func writeResources(t *testing.T, file string, docs ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(strings.Join(docs, "\n---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
