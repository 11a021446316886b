package statee2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
	"github.com/redis/go-redis/v9"
)

// ---------------------------------------------------------------- backends

const (
	redisAddr = "127.0.0.1:6379"
	pgConn    = "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable"
)

// component is one Component manifest.
type component struct {
	name, typ string
	md        map[string]string
	spec      string // extra spec lines, e.g. "initTimeout: 20s"
}

func (c component) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: %s\nspec:\n  type: %s\n  version: v1\n", c.name, c.typ)
	if c.spec != "" {
		for _, l := range strings.Split(strings.TrimSpace(c.spec), "\n") {
			b.WriteString("  " + l + "\n")
		}
	}
	if len(c.md) > 0 {
		b.WriteString("  metadata:\n")
		for k, v := range c.md {
			fmt.Fprintf(&b, "  - name: %s\n    value: %s\n", k, strconv.Quote(v))
		}
	}
	return b.String()
}

// writeComponents writes the manifests as one multi-document file in a new
// directory and returns the directory.
func writeComponents(t *testing.T, cs ...component) string {
	t.Helper()
	dir := t.TempDir()
	var docs []string
	for _, c := range cs {
		docs = append(docs, c.yaml())
	}
	if err := os.WriteFile(filepath.Join(dir, "components.yaml"), []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func sqliteComponent(t *testing.T, name string) component {
	return component{name: name, typ: "state.sqlite", md: map[string]string{
		"connectionString": filepath.Join(t.TempDir(), "state.db")}}
}

// redisComponent needs Redis and deletes the app's keys when the test ends.
func redisComponent(t *testing.T, name, appID string) component {
	t.Helper()
	e2etest.NeedServer(t, "Redis", redisAddr, "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rc := redis.NewClient(&redis.Options{Addr: redisAddr})
		defer rc.Close()
		iter := rc.Scan(ctx, 0, appID+"||*", 1000).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
	})
	return component{name: name, typ: "state.redis", md: map[string]string{"redisHost": redisAddr}}
}

// pgComponent needs PostgreSQL and uses private tables, dropped when the test ends.
func pgComponent(t *testing.T, name string) component {
	t.Helper()
	e2etest.NeedServer(t, "PostgreSQL", "127.0.0.1:5432",
		`pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start (trust auth, db "test")`)
	table, meta := e2etest.Uniq("e2e_state_"), e2etest.Uniq("e2e_meta_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgConn)
		if err != nil {
			t.Logf("drop test tables: %v", err)
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP TABLE IF EXISTS "+table+", "+meta)
	})
	return component{name: name, typ: "state.postgresql", md: map[string]string{
		"connectionString": pgConn, "tableName": table, "metadataTableName": meta}}
}

// ---------------------------------------------------------------- sidecars

// sidecar is one running `outrigger sidecar`.
type sidecar struct {
	*e2etest.Sidecar
	appID              string
	httpPort, grpcPort int
}

type sidecarOpts struct {
	appID     string
	resources string   // --resources-path ("" = none)
	args      []string // extra flags
	env       []string // extra KEY=VALUE
}

// launchSidecar starts a sidecar without waiting for it.
func launchSidecar(t *testing.T, o sidecarOpts) *sidecar {
	t.Helper()
	if o.appID == "" {
		o.appID = e2etest.Uniq("state-e2e-")
	}
	var args []string
	if o.resources != "" {
		args = append(args, "--resources-path", o.resources)
	}
	s := e2etest.LaunchSidecar(t, e2etest.SidecarConfig{Bin: outrigger, AppID: o.appID, Args: append(args, o.args...), Env: o.env})
	return &sidecar{Sidecar: s, appID: s.AppID, httpPort: s.HTTPPort, grpcPort: s.GRPCPort}
}

// startSidecar starts a sidecar and waits until GET /v1.0/healthz answers 204.
func startSidecar(t *testing.T, o sidecarOpts) *sidecar {
	t.Helper()
	s := launchSidecar(t, o)
	s.WaitHealthy(t, 30*time.Second)
	return s
}

// ---------------------------------------------------------------- HTTP

var httpc = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}

type result struct {
	status int
	header http.Header
	body   []byte
}

// tryDo sends a non-nil body as JSON unless hdr names a Content-Type.
func tryDo(method, url string, hdr http.Header, body []byte, timeout time.Duration) (result, error) {
	r, err := e2etest.Request(httpc, method, url, e2etest.JSONDefault(hdr, body), body, timeout)
	return result{status: r.Status, header: r.Header, body: r.Body}, err
}

// do is one request that must get an answer within 20 s.
func do(t *testing.T, method, url string, hdr http.Header, body []byte) result {
	t.Helper()
	r, err := tryDo(method, url, hdr, body, 20*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// daprError is Dapr's JSON error body.
type daprError = e2etest.DaprError

// wantError checks status and errorCode of a Dapr error answer.
func wantError(t *testing.T, what string, r result, status int, code string) daprError {
	t.Helper()
	var e daprError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("%s: body is not Dapr's JSON error: %v; status %d body %q", what, err, r.status, r.body)
	}
	if r.status != status || e.ErrorCode != code {
		t.Errorf("%s: got %d %q, want %d %s (body %s)", what, r.status, e.ErrorCode, status, code, r.body)
	}
	return e
}

// ---------------------------------------------------------------- metadata

type metadataResp struct {
	ID         string `json:"id"`
	Components []struct {
		Name         string   `json:"name"`
		Type         string   `json:"type"`
		Version      string   `json:"version"`
		Capabilities []string `json:"capabilities"`
	} `json:"components"`
	Extended map[string]string `json:"extended"`
}

type pluginStatus struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	PID        int      `json:"pid"`
	State      string   `json:"state"`
	Restarts   int      `json:"restarts"`
	Components []string `json:"components"`
}

func (s *sidecar) metadata(t *testing.T) metadataResp {
	t.Helper()
	r := do(t, http.MethodGet, s.URL("/v1.0/metadata"), nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1.0/metadata: %d %s", r.status, r.body)
	}
	var m metadataResp
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("GET /v1.0/metadata: %v; body %s", err, r.body)
	}
	return m
}

// plugin returns the status of the named plugin from the metadata's
// extended attribute "outrigger.plugins".
func (s *sidecar) plugin(t *testing.T, name string) pluginStatus {
	t.Helper()
	m := s.metadata(t)
	raw, ok := m.Extended["outrigger.plugins"]
	if !ok {
		t.Fatalf("metadata extended has no outrigger.plugins: %v", m.Extended)
	}
	var ps []pluginStatus
	if err := json.Unmarshal([]byte(raw), &ps); err != nil {
		t.Fatalf("outrigger.plugins is not a JSON list of plugins: %v; %s", err, raw)
	}
	for _, p := range ps {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("plugin %s not in outrigger.plugins: %s", name, raw)
	return pluginStatus{}
}
