package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/cli/runfile"
	"github.com/outrigger/outrigger/proxy/hostreg"
)

// binary is the real outrigger binary, built once for the tests that run
// `outrigger run` end to end (its sidecar is the real one).
var binary struct {
	once sync.Once
	path string
	err  error
}

func outriggerBin(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "outrigger-cli-test")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "outrigger")
		out, err := exec.Command("go", "build", "-o", binary.path, "github.com/outrigger/outrigger/proxy/cmd/outrigger").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatalf("build outrigger: %v", binary.err)
	}
	return binary.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.path != "" {
		os.RemoveAll(filepath.Dir(binary.path))
	}
	os.Exit(code)
}

// outrigger runs the binary with an isolated home and returns its output.
func outrigger(t *testing.T, home string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, outriggerBin(t), args...)
	cmd.Env = append(os.Environ(), hostreg.HomeEnv+"="+home)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("outrigger %v timed out; stdout:\n%s\nstderr:\n%s", args, o.String(), e.String())
	}
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("outrigger %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// probe is a tiny app: it reports whether the sidecar's outbound health
// answers at start (it must: run waits for it when there is no app port),
// prints its env and exits with the given code.
const probe = `import os, sys, urllib.request
try:
    r = urllib.request.urlopen("http://127.0.0.1:%s/v1.0/healthz/outbound" % os.environ["DAPR_HTTP_PORT"], timeout=5)
    print("outbound", r.status)
except Exception as e:
    print("outbound failed", e)
for k in sorted(os.environ):
    if k.startswith(("APP_", "DAPR_", "FROM_")):
        print("%s=%s" % (k, os.environ[k]))
print("cwd=" + os.getcwd())
sys.exit(int(sys.argv[1]))
`

func writeProbe(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "probe.py")
	if err := os.WriteFile(p, []byte(probe), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunGivesEnvWaitsForSidecarAndReturnsAppCode(t *testing.T) {
	home := t.TempDir()
	p := writeProbe(t, t.TempDir())
	out, errOut, code := outrigger(t, home, "run", "--app-id", "envtest", "--log-level", "info", "--", "python3", p, "3")
	if code != 3 {
		t.Fatalf("exit code = %d, want the app's 3\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, re := range []string{
		`(?m)^== APP == outbound 204$`,
		`(?m)^== APP == APP_ID=envtest$`,
		`(?m)^== APP == APP_PROTOCOL=http$`,
		`(?m)^== APP == DAPR_HTTP_PORT=\d+$`,
		`(?m)^== APP == DAPR_GRPC_PORT=\d+$`,
		`(?m)^== APP == DAPR_METRICS_PORT=\d+$`,
		`(?m)^== SIDECAR\(envtest\) == .+`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s\nstdout:\n%s\nstderr:\n%s", re, out, errOut)
		}
	}
	if strings.Contains(out, "APP_PORT=") {
		t.Errorf("APP_PORT given without --app-port:\n%s", out)
	}
	// Distinct picked ports.
	ports := map[string]bool{}
	for _, m := range regexp.MustCompile(`DAPR_(?:HTTP|GRPC|METRICS)_PORT=(\d+)`).FindAllStringSubmatch(out, -1) {
		ports[m[1]] = true
	}
	if len(ports) != 3 {
		t.Errorf("picked ports are not 3 distinct ones: %v", ports)
	}
	// The sidecar was stopped and removed its registry entry.
	if all, err := listIn(home); err != nil || len(all) != 0 {
		t.Errorf("registry after run = %v, %v; want empty", all, err)
	}
}

func listIn(home string) ([]hostreg.Entry, error) {
	old, had := os.LookupEnv(hostreg.HomeEnv)
	os.Setenv(hostreg.HomeEnv, home)
	defer func() {
		if had {
			os.Setenv(hostreg.HomeEnv, old)
		} else {
			os.Unsetenv(hostreg.HomeEnv)
		}
	}()
	return hostreg.List()
}

const echoApp = `import json, os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        print("got", self.path, body.decode(), flush=True)
        out = json.dumps({"echo": json.loads(body or b"null"), "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
print("listening on", os.environ["APP_PORT"], flush=True)
HTTPServer(("127.0.0.1", int(os.environ["APP_PORT"])), H).serve_forever()
`

func freePort(t *testing.T) int {
	t.Helper()
	ps, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

// TestRunListInvokeStop runs an app with an app port, then uses list,
// invoke and stop against it, and checks Ctrl-C style shutdown.
func TestRunListInvokeStop(t *testing.T) {
	home := t.TempDir()
	dir := t.TempDir()
	app := filepath.Join(dir, "app.py")
	if err := os.WriteFile(app, []byte(echoApp), 0o644); err != nil {
		t.Fatal(err)
	}
	appPort := freePort(t)
	cmd := exec.Command(outriggerBin(t), "run", "-a", "echo", "-p", fmt.Sprint(appPort), "--", "python3", app)
	cmd.Env = append(os.Environ(), hostreg.HomeEnv+"="+home)
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()

	// Wait for the sidecar to register and be fully ready (app channel up).
	var entry hostreg.Entry
	deadline := time.Now().Add(30 * time.Second)
	for {
		all, _ := listIn(home)
		if len(all) == 1 && healthy(all[0].HTTPPort) {
			entry = all[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sidecar not ready in time; output:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if entry.AppID != "echo" || entry.AppPort != appPort {
		t.Errorf("registry entry = %+v", entry)
	}

	stdout, stderr, code := outrigger(t, home, "list", "-o", "json")
	var rows []listRow
	if code != 0 || json.Unmarshal([]byte(stdout), &rows) != nil || len(rows) != 1 {
		t.Fatalf("list -o json: code %d, %q, %s", code, stdout, stderr)
	}
	if r := rows[0]; r.AppID != "echo" || r.AppPort != appPort || r.Command != "python3 "+app || r.CLIPID != cmd.Process.Pid || r.AppPID == 0 {
		t.Errorf("list row = %+v (want app command, cliPid %d and an appPid from the metadata PUTs)", r, cmd.Process.Pid)
	}
	stdout, _, _ = outrigger(t, home, "list")
	if !strings.Contains(stdout, "APP ID") || !strings.Contains(stdout, "echo") {
		t.Errorf("list table:\n%s", stdout)
	}

	stdout, stderr, code = outrigger(t, home, "invoke", "--app-id", "echo", "--method", "process", "--data", `{"orderId":"12345"}`)
	if code != 0 || !strings.Contains(stdout, `"orderId": "12345"`) || !strings.Contains(stdout, `"/process"`) {
		t.Fatalf("invoke: code %d\nstdout: %s\nstderr: %s\nrun output:\n%s", code, stdout, stderr, out.String())
	}
	if _, _, code = outrigger(t, home, "invoke", "--app-id", "nobody-here", "--method", "x"); code == 0 {
		t.Errorf("invoke of an unknown app succeeded")
	}

	// Ctrl-C on the run process stops app and sidecar; exit code 0.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after SIGINT: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not stop after SIGINT:\n%s", out.String())
	}
	o := out.String()
	if !strings.Contains(o, "== APP == listening on") || !strings.Contains(o, `== APP == got /process {"orderId":"12345"}`) {
		t.Errorf("app output not prefixed as expected:\n%s", o)
	}
	if hostreg.Alive(entry.PID) {
		t.Errorf("sidecar pid %d still alive after run stopped", entry.PID)
	}
	if all, _ := listIn(home); len(all) != 0 {
		t.Errorf("registry not empty after stop: %+v", all)
	}
}

func TestStopByAppID(t *testing.T) {
	home := t.TempDir()
	cmd := exec.Command(outriggerBin(t), "run", "--app-id", "sleeper", "--", "sleep", "60")
	cmd.Env = append(os.Environ(), hostreg.HomeEnv+"="+home)
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Wait until the metadata PUTs landed, so stop targets the run process.
		if stdout, _, _ := outrigger(t, home, "list", "-o", "json"); strings.Contains(stdout, `"cliPid"`) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("sidecar never registered:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stdout, stderr, code := outrigger(t, home, "stop", "--app-id", "sleeper")
	if code != 0 || !strings.Contains(stdout, "sleeper") {
		t.Fatalf("stop: code %d, %s %s", code, stdout, stderr)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("run did not end after stop:\n%s", out.String())
	}
	if _, _, code := outrigger(t, home, "stop", "--app-id", "sleeper"); code == 0 {
		t.Errorf("stopping an app that is not running succeeded")
	}
}

func TestRunTemplate(t *testing.T) {
	home := t.TempDir()
	root := t.TempDir()
	for _, d := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := writeProbe(t, root)
	tpl := fmt.Sprintf(`version: 1
common:
  env:
    FROM_COMMON: yes-common
apps:
- appID: alpha
  appDirPath: ./a
  command: ["python3", %q, "0"]
  env:
    FROM_APP: alpha-only
- appID: beta
  appDirPath: ./b
  appLogDestination: file
  command: ["python3", %q, "0"]
  someFutureKey: true
`, p, p)
	if err := os.WriteFile(filepath.Join(root, "dapr.yaml"), []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := outrigger(t, home, "run", "-f", root)
	if code != 0 {
		t.Fatalf("run -f: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"== APP - alpha == outbound 204\n",
		"== APP - alpha == APP_ID=alpha\n",
		"== APP - alpha == FROM_APP=alpha-only\n",
		"== APP - alpha == FROM_COMMON=yes-common\n",
		"== APP - alpha == cwd=" + filepath.Join(root, "a") + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "== APP - beta ==") {
		t.Errorf("beta logs to a file only, but reached the console:\n%s", out)
	}
	if strings.Contains(out, "== SIDECAR - alpha ==") {
		t.Errorf("sidecar logs default to a file, but reached the console:\n%s", out)
	}
	if !strings.Contains(errOut, "someFutureKey") {
		t.Errorf("no warning for the unknown key:\n%s", errOut)
	}
	logs, _ := filepath.Glob(filepath.Join(root, "b", ".dapr", "logs", "beta_app_*.log"))
	if len(logs) != 1 {
		t.Fatalf("beta app log files = %v", logs)
	}
	b, _ := os.ReadFile(logs[0])
	if !strings.Contains(string(b), "APP_ID=beta\n") || !strings.Contains(string(b), "FROM_COMMON=yes-common\n") || strings.Contains(string(b), "FROM_APP") {
		t.Errorf("beta log:\n%s", b)
	}
	sclogs, _ := filepath.Glob(filepath.Join(root, "a", ".dapr", "logs", "alpha_daprd_*.log"))
	if len(sclogs) != 1 {
		t.Errorf("alpha sidecar log files = %v", sclogs)
	}
}

func TestRunArgumentErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "-f", "x.yaml", "--", "echo"}, "not both"},
		{[]string{"run", "-f", "x.yaml", "--app-id", "a"}, "remove --app-id"},
		{[]string{"run", "--no-such-flag"}, "unknown flag"},
		{[]string{"run", "-f", "/nonexistent/dapr.yaml"}, "read run template"},
		{[]string{"version", "-o", "xml"}, "unknown output format"},
		{[]string{"list", "-o", "xml"}, "unknown output format"},
		{[]string{"invoke", "--app-id", "a"}, "give --app-id and --method"},
		{[]string{"publish", "--pubsub", "p"}, "give --publish-app-id"},
		{[]string{"publish", "-i", "a", "-p", "p", "-t", "t", "-m", "nope"}, "--metadata must be a JSON object"},
		{[]string{"stop"}, "give --app-id"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			t.Setenv(hostreg.HomeEnv, t.TempDir())
			code := run(context.Background(), tt.args, &out, &errOut)
			if code == 0 || !strings.Contains(errOut.String(), tt.want) {
				t.Fatalf("code %d, stderr %q; want failure mentioning %q", code, errOut.String(), tt.want)
			}
		})
	}
}

func TestVersionJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version", "-o", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("code %d: %s", code, errOut.String())
	}
	var bi buildInfo
	if err := json.Unmarshal(out.Bytes(), &bi); err != nil || !strings.HasPrefix(bi.GoVersion, "go") || bi.Version == "" {
		t.Fatalf("version -o json = %q (%v)", out.String(), err)
	}
}

func TestInitIsIdempotent(t *testing.T) {
	home := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"init", "--home", home}, &out, &errOut); code != 0 {
		t.Fatalf("init: %s", errOut.String())
	}
	state, err := os.ReadFile(filepath.Join(home, "components", "statestore.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"type: state.sqlite", filepath.Join(home, "data", "state.db"), `name: actorStateStore`, `value: "true"`} {
		if !strings.Contains(string(state), want) {
			t.Errorf("statestore.yaml lacks %q:\n%s", want, state)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(home, "components", "pubsub.yaml"))
	if !strings.Contains(string(pub), "type: pubsub.sqlite") || !strings.Contains(string(pub), filepath.Join(home, "data", "pubsub.db")) {
		t.Errorf("pubsub.yaml:\n%s", pub)
	}
	if cfg, _ := os.ReadFile(filepath.Join(home, "config.yaml")); !strings.Contains(string(cfg), "kind: Configuration") {
		t.Errorf("config.yaml:\n%s", cfg)
	}
	// A user's edit survives a second init.
	edited := filepath.Join(home, "config.yaml")
	if err := os.WriteFile(edited, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run(context.Background(), []string{"init", "--home", home}, &out, &errOut); code != 0 {
		t.Fatalf("second init: %s", errOut.String())
	}
	if b, _ := os.ReadFile(edited); string(b) != "mine" {
		t.Errorf("second init overwrote config.yaml")
	}
	// OUTRIGGER_HOME is the default home.
	envHome := t.TempDir()
	t.Setenv(hostreg.HomeEnv, envHome)
	if code := run(context.Background(), []string{"init"}, &out, &errOut); code != 0 {
		t.Fatalf("init with OUTRIGGER_HOME: %s", errOut.String())
	}
	if _, err := os.Stat(filepath.Join(envHome, "components", "pubsub.yaml")); err != nil {
		t.Errorf("init ignored %s: %v", hostreg.HomeEnv, err)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ps, err := freePorts(8)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ps {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v not distinct and positive", ps)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("picked port %d is not free: %v", p, err)
		}
		ln.Close()
	}
	if id := randomAppID(); !regexp.MustCompile(`^[a-z]+-[a-z]+$`).MatchString(id) {
		t.Fatalf("randomAppID() = %q", id)
	}
}

func TestTemplateSidecarArgsKeepsKnownFlags(t *testing.T) {
	var app runfileApp
	app.AppID, app.AppPort, app.AppProtocol, app.LogLevel = "x", 5000, "http", "debug"
	app.AppSSL = true // daprd has it; our sidecar does not
	app.ResourcesPaths = []string{"/r1", "/r2"}
	args, ignored := templateSidecarArgs(app, map[string]int{flagHTTPPort: 1, flagGRPCPort: 2, flagInternalGRPCPort: 3, flagMetricsPort: 4}, newSidecarCmd().Flags())
	got := strings.Join(args, " ")
	want := "sidecar --app-id=x --dapr-http-port=1 --dapr-grpc-port=2 --dapr-internal-grpc-port=3 --metrics-port=4 --app-port=5000 --app-protocol=http --resources-path=/r1 --resources-path=/r2 --log-level=debug"
	if got != want {
		t.Errorf("args = %s\nwant   %s", got, want)
	}
	if strings.Join(ignored, ",") != "app-ssl" {
		t.Errorf("ignored = %v, want [app-ssl]", ignored)
	}
	// The sidecar accepts what we generate.
	sc := newSidecarCmd()
	if err := sc.ParseFlags(args[1:]); err != nil {
		t.Errorf("sidecar rejects generated args: %v", err)
	}
}

func healthy(port int) bool {
	c := &httpClient
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/v1.0/healthz", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 204
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type runfileApp = runfile.App

var httpClient = http.Client{Timeout: time.Second}
