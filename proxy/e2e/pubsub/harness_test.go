package pubsube2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
	"github.com/redis/go-redis/v9"
)

// ---------------------------------------------------------------- brokers

const redisAddr = "127.0.0.1:6379"

// broker makes the Component YAML of one pub/sub component named "pubsub"
// for a test; every sidecar of the test gets the same YAML (and so the same
// SQLite file or Redis).
type broker struct {
	name string
	yaml func(t *testing.T, extra map[string]string) string
}

var brokers = []broker{
	{"sqlite", sqliteYAML},
	{"redis", redisYAML},
}

func componentYAML(name, typ string, md map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: %s\nspec:\n  type: %s\n  version: v1\n  metadata:\n", name, typ)
	for k, v := range md {
		fmt.Fprintf(&b, "  - name: %s\n    value: %s\n", k, strconv.Quote(v))
	}
	return b.String()
}

// sqliteYAML: one database file per test, leases (5 s) short enough that a
// killed consumer's messages come back within the test.
func sqliteYAML(t *testing.T, extra map[string]string) string {
	md := map[string]string{
		"connectionString":  filepath.Join(t.TempDir(), "pubsub.db"),
		"visibilityTimeout": "5s", // longer than the inbound retries (~3 s)
	}
	for k, v := range extra {
		md[k] = v
	}
	return componentYAML("pubsub", "pubsub.sqlite", md)
}

// redisYAML needs Redis; pending entries of dead consumers are reclaimed
// after 5 s. Tests use unique topic names; the streams are deleted by
// cleanupTopics.
func redisYAML(t *testing.T, extra map[string]string) string {
	t.Helper()
	e2etest.NeedServer(t, "Redis", redisAddr, "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''")
	md := map[string]string{
		"redisHost":         redisAddr,
		"redeliverInterval": "1s",
		"processingTimeout": "5s", // longer than the inbound retries (~3 s)
	}
	for k, v := range extra {
		md[k] = v
	}
	return componentYAML("pubsub", "pubsub.redis", md)
}

// cleanupTopics deletes the Redis streams of the given topics when the test
// ends (harmless for other brokers).
func cleanupTopics(t *testing.T, topics ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rc := redis.NewClient(&redis.Options{Addr: redisAddr})
		defer rc.Close()
		_ = rc.Del(ctx, topics...).Err()
	})
}

// resources writes the given YAML documents into a new directory.
func resources(t *testing.T, docs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i, d := range docs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%02d.yaml", i)), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// subscriptionYAML renders a declarative Subscription (v1alpha1 when rules
// is empty, else v2alpha1 with the rules in order).
func subscriptionYAML(name, topic, route string, rules [][2]string, deadLetter string, md map[string]string, scopes ...string) string {
	var b strings.Builder
	api := "v1alpha1"
	if len(rules) > 0 {
		api = "v2alpha1"
	}
	fmt.Fprintf(&b, "apiVersion: dapr.io/%s\nkind: Subscription\nmetadata:\n  name: %s\nspec:\n  pubsubname: pubsub\n  topic: %s\n", api, name, topic)
	if len(rules) > 0 {
		b.WriteString("  routes:\n    rules:\n")
		for _, r := range rules {
			fmt.Fprintf(&b, "    - match: %s\n      path: %s\n", strconv.Quote(r[0]), r[1])
		}
		fmt.Fprintf(&b, "    default: %s\n", route)
	} else {
		fmt.Fprintf(&b, "  route: %s\n", route)
	}
	if deadLetter != "" {
		fmt.Fprintf(&b, "  deadLetterTopic: %s\n", deadLetter)
	}
	if len(md) > 0 {
		b.WriteString("  metadata:\n")
		for k, v := range md {
			fmt.Fprintf(&b, "    %s: %s\n", k, strconv.Quote(v))
		}
	}
	if len(scopes) > 0 {
		b.WriteString("scopes:\n")
		for _, s := range scopes {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	return b.String()
}

// ---------------------------------------------------------------- processes

// startProc starts bin in dir in its own process group: stopping it sends
// SIGTERM (as `kill <pid>` or `outrigger stop` would; its plugins are its to
// stop), SIGKILL after 10 s, then SIGKILL to whatever is left of the group
// (plugins of a killed sidecar). Its output is logged when the test failed
// or PUBSUBE2E_LOGS is set.
func startProc(t *testing.T, name string, env []string, dir, bin string, args ...string) *e2etest.Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = env, dir
	return e2etest.StartProc(t, name, cmd, procOptions())
}

func procOptions() e2etest.ProcOptions {
	return e2etest.ProcOptions{Group: true, AlwaysLog: os.Getenv("PUBSUBE2E_LOGS") != ""}
}

// sidecar is one running `outrigger sidecar`.
type sidecar struct {
	*e2etest.Sidecar
	appID              string
	httpPort, grpcPort int
}

type sidecarOpts struct {
	appID     string
	appPort   int    // 0: no app
	resources string // --resources-path
	home      string // OUTRIGGER_HOME ("" = new temp dir)
}

// startSidecar starts a sidecar and waits until it is healthy (GET
// /v1.0/healthz 204: API up and, with an app, the app channel ready).
func startSidecar(t *testing.T, o sidecarOpts) *sidecar {
	t.Helper()
	var args []string
	if o.appPort > 0 {
		args = append(args, "--app-port", strconv.Itoa(o.appPort))
	}
	if o.resources != "" {
		args = append(args, "--resources-path", o.resources)
	}
	s := e2etest.LaunchSidecar(t, e2etest.SidecarConfig{Bin: outrigger, AppID: o.appID, Home: o.home, Args: args,
		Proc: procOptions()})
	s.WaitHealthy(t, 30*time.Second)
	return &sidecar{Sidecar: s, appID: s.AppID, httpPort: s.HTTPPort, grpcPort: s.GRPCPort}
}

// publish POSTs data to /v1.0/publish/pubsub/<topic>[?query] and wants 204.
func (s *sidecar) publish(t *testing.T, topic, query, contentType string, data []byte, hdr http.Header) {
	t.Helper()
	r := s.tryPublish(t, topic, query, contentType, data, hdr)
	if r.status != http.StatusNoContent {
		t.Fatalf("publish to %s via %s: %d %s", topic, s.appID, r.status, r.body)
	}
}

func (s *sidecar) tryPublish(t *testing.T, topic, query, contentType string, data []byte, hdr http.Header) result {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("Content-Type", contentType)
	u := s.URL("/v1.0/publish/pubsub/" + topic)
	if query != "" {
		u += "?" + query
	}
	return do(t, http.MethodPost, u, hdr, data)
}

// subscriptions reads the sidecar's subscriptions from /v1.0/metadata.
func (s *sidecar) subscriptions(t *testing.T) []map[string]any {
	t.Helper()
	r := do(t, http.MethodGet, s.URL("/v1.0/metadata"), nil, nil)
	var m struct {
		Subscriptions []map[string]any `json:"subscriptions"`
	}
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("GET /v1.0/metadata: %v; body %s", err, r.body)
	}
	return m.Subscriptions
}

// ---------------------------------------------------------------- HTTP

var httpc = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}

type result struct {
	status int
	header http.Header
	body   []byte
}

func tryDo(method, url string, hdr http.Header, body []byte, timeout time.Duration) (result, error) {
	r, err := e2etest.Request(httpc, method, url, hdr, body, timeout)
	return result{status: r.Status, header: r.Header, body: r.Body}, err
}

func do(t *testing.T, method, url string, hdr http.Header, body []byte) result {
	t.Helper()
	r, err := tryDo(method, url, hdr, body, 20*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// wantError checks status and errorCode of a Dapr error answer.
func wantError(t *testing.T, what string, r result, status int, code string) {
	t.Helper()
	var e struct {
		ErrorCode string `json:"errorCode"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("%s: body is not Dapr's JSON error: %v; status %d body %q", what, err, r.status, r.body)
	}
	if r.status != status || e.ErrorCode != code {
		t.Errorf("%s: got %d %q, want %d %s (body %s)", what, r.status, e.ErrorCode, status, code, r.body)
	}
}

// ---------------------------------------------------------------- the recording app

// delivery is one request the sidecar made to the app.
type delivery struct {
	path   string
	header http.Header
	ce     map[string]any
}

// answer is how the app replies: an HTTP status and a body.
type answer struct {
	status int
	body   string
}

var success = answer{200, `{"status":"SUCCESS"}`}

// app is a plain HTTP app in the test process: it serves GET
// /dapr/subscribe from subs (nil: 404) and records every POST.
type app struct {
	port   int
	subs   []map[string]any
	mu     sync.Mutex
	got    []delivery
	done   map[string]time.Time             // data.n → when the app first answered it
	reply  func(d delivery, nth int) answer // nth: how many times this event id came before
	server *http.Server
}

func startApp(t *testing.T, subs []map[string]any, reply func(d delivery, nth int) answer) *app {
	t.Helper()
	a := &app{subs: subs, reply: reply}
	if a.reply == nil {
		a.reply = func(delivery, int) answer { return success }
	}
	// A probed port can be taken by someone else before we bind it (other
	// processes ask the kernel for any free port): try another.
	var ln net.Listener
	var err error
	for range 5 {
		a.port = e2etest.FreePort(t)
		if ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(a.port)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("app listen: %v", err)
	}
	a.server = &http.Server{Handler: http.HandlerFunc(a.serve)}
	go func() { _ = a.server.Serve(ln) }()
	t.Cleanup(func() { _ = a.server.Close() })
	return a
}

func (a *app) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/dapr/subscribe" {
		if a.subs == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.subs)
		return
	}
	if r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	d := delivery{path: r.URL.Path, header: r.Header.Clone()}
	if err := json.Unmarshal(body, &d.ce); err != nil {
		d.ce = map[string]any{"_raw": string(body)}
	}
	a.mu.Lock()
	nth := 0
	for _, g := range a.got {
		if g.ce["id"] == d.ce["id"] && g.ce["id"] != nil {
			nth++
		}
	}
	a.got = append(a.got, d)
	a.mu.Unlock()
	ans := a.reply(d, nth)
	if m, ok := d.ce["data"].(map[string]any); ok {
		a.mu.Lock()
		if a.done == nil {
			a.done = map[string]time.Time{}
		}
		if k := fmt.Sprint(m["n"]); a.done[k].IsZero() {
			a.done[k] = time.Now()
		}
		a.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ans.status)
	_, _ = io.WriteString(w, ans.body)
}

// deliveries returns a copy of what the app got, optionally only on path.
func (a *app) deliveries(path string) []delivery {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []delivery
	for _, d := range a.got {
		if path == "" || d.path == path {
			out = append(out, d)
		}
	}
	return out
}

// answeredBefore returns the data ids the app had answered before t.
func (a *app) answeredBefore(t time.Time) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for k, at := range a.done {
		if at.Before(t) {
			out = append(out, k)
		}
	}
	return out
}

// dataIDs returns the "n" field of each delivery's JSON data on path, with
// how many times each came.
func (a *app) dataIDs(path string) map[string]int {
	out := map[string]int{}
	for _, d := range a.deliveries(path) {
		if m, ok := d.ce["data"].(map[string]any); ok {
			out[fmt.Sprint(m["n"])]++
		}
	}
	return out
}

// waitCount waits until the app has n distinct data ids on path.
func (a *app) waitCount(t *testing.T, path string, n int, deadline time.Duration) {
	t.Helper()
	e2etest.WaitFor(t, deadline, fmt.Sprintf("%d distinct events on %s (have %d)", n, path, len(a.dataIDs(path))), func() bool {
		return len(a.dataIDs(path)) >= n
	})
}

// publishN publishes n JSON events {"n": i} (i from start) to topic.
func publishN(t *testing.T, s *sidecar, topic string, start, n int) {
	t.Helper()
	for i := start; i < start+n; i++ {
		s.publish(t, topic, "", "application/json", []byte(fmt.Sprintf(`{"n":%d}`, i)), nil)
	}
}

// ---------------------------------------------------------------- the child app

// appModeEnv switches the test binary into a subscriber app (see
// runChildApp): PUBSUBE2E_APP=<port>,<route>,<ids file>,<delay>.
const appModeEnv = "PUBSUBE2E_APP"

// runChildApp is an app process the tests can SIGKILL: for every event on
// route it waits delay (to be mid-stream when killed), appends the event's
// data.n to the ids file (written before the acknowledgement), then answers
// SUCCESS.
func runChildApp() int {
	parts := strings.Split(os.Getenv(appModeEnv), ",")
	if len(parts) != 4 {
		fmt.Fprintln(os.Stderr, "child app: want PUBSUBE2E_APP=<port>,<route>,<file>,<delay>")
		return 2
	}
	delay, err := time.ParseDuration(parts[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "child app:", err)
		return 2
	}
	f, err := os.OpenFile(parts[2], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child app:", err)
		return 2
	}
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+parts[1], func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Data struct {
				N int `json:"n"`
			} `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(delay)
		mu.Lock()
		_, err := fmt.Fprintf(f, "%d\n", ev.Data.N)
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"SUCCESS"}`)
	})
	fmt.Fprintln(os.Stderr, "child app listening on", parts[0])
	if err := http.ListenAndServe("127.0.0.1:"+parts[0], mux); err != nil {
		fmt.Fprintln(os.Stderr, "child app:", err)
		return 1
	}
	return 0
}

// startChildApp starts the test binary as an app and waits for its port.
func startChildApp(t *testing.T, port int, route, idsFile string, delay time.Duration) *e2etest.Proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "child app", e2etest.CleanEnv([]string{appModeEnv}, fmt.Sprintf("%s=%d,%s,%s,%s", appModeEnv, port, route, idsFile, delay)), "", exe)
	e2etest.WaitFor(t, 10*time.Second, "the child app's port", func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

// readIDs counts the ids in a child app's ids file.
func readIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]int{}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out[l]++
		}
	}
	return out
}
