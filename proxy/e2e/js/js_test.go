package jse2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// sdkVersion is the @dapr/dapr version package.json pins; node_modules must hold it.
const sdkVersion = "3.18.0"

// Set once by TestMain.
var (
	outriggerBin string // built sidecar binary
	nodeBin      string // node on PATH
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if err := checkNode(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return e2etest.Main(m, "jse2e", map[string]string{"outrigger": "github.com/outrigger/outrigger/proxy/cmd/outrigger"},
		func(dir string) error {
			outriggerBin = filepath.Join(dir, "outrigger")
			return nil
		})
}

// checkNode finds node and the pinned SDK in ./node_modules.
func checkNode() error {
	var err error
	if nodeBin, err = exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is not on PATH (install Node.js >= 18): %w", err)
	}
	b, err := os.ReadFile(filepath.Join("node_modules", "@dapr", "dapr", "package.json"))
	if err != nil {
		return fmt.Errorf("the Dapr JS SDK is not installed: run npm ci in proxy/e2e/js (%w)", err)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return fmt.Errorf("read node_modules/@dapr/dapr/package.json: %w", err)
	}
	if pkg.Version != sdkVersion {
		return fmt.Errorf("node_modules has @dapr/dapr %s, want %s: run npm ci in proxy/e2e/js", pkg.Version, sdkVersion)
	}
	return nil
}

// ---------------------------------------------------------------- sidecars

type sidecar struct {
	*e2etest.Sidecar
	appID              string
	httpPort, grpcPort int
}

// launchSidecar starts `outrigger sidecar` for appID with free ports (and
// no admin endpoint); it does not wait for readiness.
func launchSidecar(t *testing.T, home string, gossipPort int, appID string, appPort int, appProtocol string) *sidecar {
	t.Helper()
	s := e2etest.LaunchSidecar(t, e2etest.SidecarConfig{Bin: outriggerBin, AppID: appID, Home: home, GossipPort: gossipPort,
		Args: []string{"--app-port", strconv.Itoa(appPort), "--app-protocol", appProtocol, "--admin-port", "-1"},
		Proc: e2etest.ProcOptions{StopTimeout: 5 * time.Second}})
	return &sidecar{Sidecar: s, appID: s.AppID, httpPort: s.HTTPPort, grpcPort: s.GRPCPort}
}

// startProc starts cmd; it is stopped (SIGTERM, SIGKILL after 5 s) when the
// test ends.
func startProc(t *testing.T, name string, cmd *exec.Cmd) *e2etest.Proc {
	t.Helper()
	return e2etest.StartProc(t, name, cmd, e2etest.ProcOptions{StopTimeout: 5 * time.Second})
}

// httpc is the test's own HTTP client: no proxy from the environment.
var httpc = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}

// waitStatus polls GET path until it answers want; it fails the test after
// deadline or when the sidecar exits.
func (s *sidecar) waitStatus(t *testing.T, method, path string, body []byte, want int, deadline time.Duration) {
	t.Helper()
	end := time.Now().Add(deadline)
	last := ""
	for {
		req, err := http.NewRequest(method, s.URL(path), bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := httpc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = fmt.Sprintf("%s %.200q", resp.Status, b)
		} else {
			last = err.Error()
		}
		select {
		case <-s.Done():
			t.Fatalf("sidecar %s exited (%v) before %s %s answered %d", s.appID, s.Err(), method, path, want)
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("sidecar %s: %s %s did not answer %d within %v (last: %s)", s.appID, method, path, want, deadline, last)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// ---------------------------------------------------------------- node scripts

// startApp runs app.js (a DaprServer) behind sc and waits for its READY line.
func startApp(t *testing.T, protocol string, appPort int, sc *sidecar) *e2etest.Proc {
	t.Helper()
	daprPort := sc.httpPort
	if protocol == "grpc" {
		daprPort = sc.grpcPort
	}
	cmd := exec.Command(nodeBin, "app.js", protocol, strconv.Itoa(appPort), strconv.Itoa(daprPort), sc.appID)
	cmd.Env = nodeEnv()
	p := startProc(t, "app.js "+sc.appID+" ("+protocol+")", cmd)
	p.WaitLine(t, "READY ", 40*time.Second) // the SDK polls the sidecar's metadata for up to 30 s
	return p
}

// nodeEnv is the environment without DAPR_* variables, so only the ports the
// test passes decide where the SDK connects.
func nodeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DAPR_") && !strings.HasPrefix(kv, "APP_") {
			env = append(env, kv)
		}
	}
	return env
}

// clientResult is what one client.js run printed.
type clientResult struct {
	ok     bool            // RESULT (true) or ERROR (false)
	result json.RawMessage // RESULT payload
	err    struct {
		Message string `json:"message"`
		Code    *int   `json:"code"`
	}
	output string // everything it printed, for failure messages
}

// runClient runs client.js with args and returns its RESULT or ERROR line.
func runClient(t *testing.T, args ...string) clientResult {
	t.Helper()
	return runClientEnv(t, nil, args...)
}

// runClientEnv is runClient with extra KEY=VALUE environment entries.
func runClientEnv(t *testing.T, env []string, args ...string) clientResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, append([]string{"client.js"}, args...)...)
	cmd.Env = append(nodeEnv(), env...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	r := clientResult{output: out.String()}
	if rest, ok := e2etest.FindLine(r.output, "RESULT "); ok {
		r.ok, r.result = true, json.RawMessage(rest)
		if runErr != nil {
			t.Fatalf("node client.js %s printed a result but failed: %v\n%s", strings.Join(args, " "), runErr, r.output)
		}
		return r
	}
	if rest, ok := e2etest.FindLine(r.output, "ERROR "); ok {
		if err := json.Unmarshal([]byte(rest), &r.err); err != nil {
			t.Fatalf("node client.js %s: bad ERROR line: %v\n%s", strings.Join(args, " "), err, r.output)
		}
		return r
	}
	t.Fatalf("node client.js %s printed neither RESULT nor ERROR (%v):\n%s", strings.Join(args, " "), runErr, r.output)
	return r
}

// ---------------------------------------------------------------- test

// processReply is what app.js answers on POST /process.
type processReply struct {
	App         string         `json:"app"`
	Protocol    string         `json:"protocol"`
	Received    map[string]any `json:"received"`
	ContentType string         `json:"contentType"`
}

func TestJSSDK(t *testing.T) {
	home, gossipPort := t.TempDir(), e2etest.FreePort(t)

	// A: the caller's sidecar, no app.
	a := launchSidecar(t, home, gossipPort, "a", 0, "http")
	// B: a JS HTTP DaprServer behind it. The app waits for B's API and B's
	// healthz waits for the app, so: B's outbound API, then the app, then healthz.
	bAppPort := e2etest.FreePort(t)
	b := launchSidecar(t, home, gossipPort, "b", bAppPort, "http")
	// C: a JS gRPC DaprServer behind a sidecar with --app-protocol grpc.
	cAppPort := e2etest.FreePort(t)
	c := launchSidecar(t, home, gossipPort, "c", cAppPort, "grpc")

	for _, s := range []*sidecar{a, b, c} {
		s.waitStatus(t, http.MethodGet, "/v1.0/healthz/outbound", nil, http.StatusNoContent, 15*time.Second)
	}
	startApp(t, "http", bAppPort, b)
	startApp(t, "grpc", cAppPort, c)
	for _, s := range []*sidecar{a, b, c} {
		s.waitStatus(t, http.MethodGet, "/v1.0/healthz", nil, http.StatusNoContent, 15*time.Second)
	}
	// Gossip has converged once A can reach both apps.
	for _, target := range []string{"b", "c"} {
		a.waitStatus(t, http.MethodPost, "/v1.0/invoke/"+target+"/method/process", []byte(`{"orderId":0}`), http.StatusOK, 15*time.Second)
	}

	port := func(s *sidecar, protocol string) string {
		if protocol == "grpc" {
			return strconv.Itoa(s.grpcPort)
		}
		return strconv.Itoa(s.httpPort)
	}

	t.Run("invoke", func(t *testing.T) {
		for _, tc := range []struct {
			clientProto, target, appProto string
		}{
			{"http", "b", "http"},
			{"grpc", "b", "http"},
			{"http", "c", "grpc"},
			{"grpc", "c", "grpc"},
		} {
			t.Run(tc.clientProto+"-client/"+tc.appProto+"-app", func(t *testing.T) {
				t.Parallel()
				r := runClient(t, tc.clientProto, port(a, tc.clientProto), "invoke", tc.target, "process", `{"orderId":7}`)
				if !r.ok {
					t.Fatalf("invoke %s over %s failed: %s (code %v)\n%s", tc.target, tc.clientProto, r.err.Message, r.err.Code, r.output)
				}
				var got processReply
				if err := json.Unmarshal(r.result, &got); err != nil {
					t.Fatalf("result is not the app's reply: %v: %s", err, r.result)
				}
				want := processReply{App: tc.target, Protocol: tc.appProto, Received: map[string]any{"orderId": float64(7)}, ContentType: "application/json"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("invoke %s over %s:\n got %+v\nwant %+v", tc.target, tc.clientProto, got, want)
				}
			})
		}
	})

	t.Run("metadata", func(t *testing.T) {
		for _, tc := range []struct {
			proto string
			sc    *sidecar
			env   bool // find the sidecar from DAPR_*_PORT instead of options
		}{
			{"http", a, false}, {"grpc", a, false}, {"http", b, false}, {"grpc", c, false},
			{"http", b, true}, {"grpc", c, true},
		} {
			name := tc.proto + "/" + tc.sc.appID
			if tc.env {
				name += "/from-env"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				daprPort, env := port(tc.sc, tc.proto), []string(nil)
				if tc.env {
					// No host/port options: the SDK reads DAPR_HTTP_PORT / DAPR_GRPC_PORT.
					daprPort = "env"
					env = []string{"DAPR_HTTP_PORT=" + port(tc.sc, "http"), "DAPR_GRPC_PORT=" + port(tc.sc, "grpc")}
				}
				r := runClientEnv(t, env, tc.proto, daprPort, "metadata")
				if !r.ok {
					t.Fatalf("metadata over %s failed: %s (code %v)\n%s", tc.proto, r.err.Message, r.err.Code, r.output)
				}
				var md struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(r.result, &md); err != nil {
					t.Fatalf("metadata is not JSON: %v: %s", err, r.result)
				}
				if md.ID != tc.sc.appID {
					t.Errorf("metadata id = %q, want %q (result %s)", md.ID, tc.sc.appID, r.result)
				}
			})
		}
	})

	// An unknown app id is an error the SDK surfaces: HTTP 500 ERR_DIRECT_INVOKE,
	// gRPC Internal (code 13), as daprd answers.
	t.Run("unknown-app", func(t *testing.T) {
		t.Run("http", func(t *testing.T) {
			t.Parallel()
			r := runClient(t, "http", port(a, "http"), "invoke", "nosuch", "process", `{"orderId":7}`)
			if r.ok {
				t.Fatalf("invoke of an unknown app succeeded: %s", r.result)
			}
			var e struct {
				ErrorMsg string `json:"error_msg"`
				Status   int    `json:"status"`
			}
			if err := json.Unmarshal([]byte(r.err.Message), &e); err != nil {
				t.Fatalf("the SDK's error is not its HTTP error JSON: %v: %q", err, r.err.Message)
			}
			if e.Status != http.StatusInternalServerError || !strings.Contains(e.ErrorMsg, "ERR_DIRECT_INVOKE") {
				t.Errorf("error = status %d body %q, want 500 with ERR_DIRECT_INVOKE", e.Status, e.ErrorMsg)
			}
		})
		t.Run("grpc", func(t *testing.T) {
			t.Parallel()
			r := runClient(t, "grpc", port(a, "grpc"), "invoke", "nosuch", "process", `{"orderId":7}`)
			if r.ok {
				t.Fatalf("invoke of an unknown app succeeded: %s", r.result)
			}
			const internal = 13
			if r.err.Code == nil || *r.err.Code != internal {
				t.Errorf("error code = %v, want %d (Internal); message %q", r.err.Code, internal, r.err.Message)
			}
		})
	})
}
