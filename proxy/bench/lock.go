package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/redis/go-redis/v9"
)

// Lock suite goal (issue 8): the sidecar path keeps at least half the direct throughput.
const (
	goalLockThroughput = 0.50
	lockStoreName      = "bench-lock"
	secretStoreName    = "bench-secrets"
	secretKey          = "db-password"
)

// lockUnlockScript is lock.redis's release script (plugins/lock/redis/store.go): delete the key
// only when it holds the owner. Kept equal so the direct baseline does the plugin's work.
const lockUnlockScript = `
local v = redis.call("GET", KEYS[1])
if not v then return 1 end
if v ~= ARGV[1] then return 2 end
redis.call("DEL", KEYS[1])
return 0
`

// runLock measures one acquire + release pair through a sidecar (HTTP and gRPC) against
// lock.redis, next to the same commands (SET NX PX, then the release script) made directly.
func runLock(ctx context.Context, e *env) (*suiteReport, error) {
	s := &suiteReport{Name: suiteLock, Title: fmt.Sprintf("Outrigger lock benchmark: lock.redis, one op = acquire + release of a worker's own resource, %d workers", e.o.concurrency)}
	if !e.l.hasPlugin("lock.redis") {
		e.note(s, "SKIPPED: plugin binary %s missing (run `make build`)", filepath.Join(e.l.plugins, "lock-redis"))
		return s, nil
	}
	rdb, err := e.redisClient(ctx)
	if err != nil {
		return nil, err
	}
	appID := e.tag + "-lock"
	directPrefix := e.tag + "-directlock-"
	defer e.deleteKeys("*" + appID + "*")
	defer e.deleteKeys(directPrefix + "*")
	res, err := e.writeResources("lock", map[string]string{
		"lock.yaml": redisComponent(lockStoreName, "lock.redis", "redisHost", e.o.redisAddr),
	})
	if err != nil {
		return nil, err
	}
	e.progress("lock: starting an app-less sidecar with lock.redis")
	sc, err := e.startSidecar(ctx, sidecarSpec{appID: appID, resources: res})
	if err != nil {
		return nil, err
	}
	conn, dapr, err := dial(sc)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	hc := httpClient(e.o.concurrency, e.o.timeout)
	defer hc.CloseIdleConnections()
	unlock := redis.NewScript(lockUnlockScript)
	if err := unlock.Load(ctx, rdb).Err(); err != nil {
		return nil, fmt.Errorf("load the unlock script into redis: %w", err)
	}

	resource := func(w int) string { return fmt.Sprintf("r-%d", w) }
	owner := func(w int) string { return fmt.Sprintf("%s-owner-%d", e.tag, w) }
	type bodies struct{ lock, unlock []byte }
	httpBodies := make([]bodies, e.o.concurrency)
	for w := range httpBodies {
		l, _ := json.Marshal(map[string]any{"resourceId": resource(w), "lockOwner": owner(w), "expiryInSeconds": 10})
		u, _ := json.Marshal(map[string]any{"resourceId": resource(w), "lockOwner": owner(w)})
		httpBodies[w] = bodies{l, u}
	}

	direct := func(ctx context.Context, w int) error {
		key := directPrefix + resource(w)
		ok, err := rdb.SetNX(ctx, key, owner(w), 10*time.Second).Result()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("direct lock %s not acquired", key)
		}
		n, err := unlock.EvalSha(ctx, rdb, []string{key}, owner(w)).Int()
		if err == nil && n != 0 {
			err = fmt.Errorf("direct unlock %s: script returned %d", key, n)
		}
		return err
	}
	// viaHTTPTo and viaGRPCTo make the same two calls (lock, then unlock) to a sidecar or to the
	// floor: url maps a path to the server's address.
	viaHTTPTo := func(url func(string) string) func(context.Context, int) error {
		return func(ctx context.Context, w int) error {
			b, err := doHTTP(ctx, hc, http.MethodPost, url("/v1.0-alpha1/lock/"+lockStoreName), "application/json", httpBodies[w].lock, http.StatusOK)
			if err != nil {
				return err
			}
			var got struct {
				Success bool `json:"success"`
			}
			if err := json.Unmarshal(b, &got); err != nil || !got.Success {
				return fmt.Errorf("http lock %s not acquired: %.200s", resource(w), b)
			}
			b, err = doHTTP(ctx, hc, http.MethodPost, url("/v1.0-alpha1/unlock/"+lockStoreName), "application/json", httpBodies[w].unlock, http.StatusOK)
			if err != nil {
				return err
			}
			var st struct {
				Status int `json:"status"`
			}
			if err := json.Unmarshal(b, &st); err != nil || st.Status != 0 {
				return fmt.Errorf("http unlock %s: %.200s", resource(w), b)
			}
			return nil
		}
	}
	viaGRPCTo := func(dapr runtimev1.DaprClient) func(context.Context, int) error {
		return func(ctx context.Context, w int) error {
			r, err := dapr.TryLockAlpha1(ctx, &runtimev1.TryLockRequest{StoreName: lockStoreName, ResourceId: resource(w), LockOwner: owner(w), ExpiryInSeconds: 10})
			if err != nil {
				return err
			}
			if !r.GetSuccess() {
				return fmt.Errorf("grpc lock %s not acquired", resource(w))
			}
			u, err := dapr.UnlockAlpha1(ctx, &runtimev1.UnlockRequest{StoreName: lockStoreName, ResourceId: resource(w), LockOwner: owner(w)})
			if err == nil && u.GetStatus() != runtimev1.UnlockResponse_SUCCESS {
				err = fmt.Errorf("grpc unlock %s: %v", resource(w), u.GetStatus())
			}
			return err
		}
	}
	viaHTTP := viaHTTPTo(sc.url)
	viaGRPC := viaGRPCTo(dapr)

	// The ceilings: the same two calls, with the same clients, answered by a no-op Go server and
	// by the thinnest Go sidecar (one gRPC call to a no-op plugin per request).
	ceil, err := startCeilings(ctx, e)
	if err != nil {
		return nil, err
	}
	defer ceil.close()
	floorHTTP, floorGRPC := viaHTTPTo(ceil.floor.url), viaGRPCTo(ceil.floorDapr)
	fwdHTTP, fwdGRPC := viaHTTPTo(ceil.fwd.url), viaGRPCTo(ceil.fwdDapr)
	floorProcs, fwdProcs := []*proc{ceil.floor.proc}, ceil.fwd.procs()

	side, plugin := sidecarCPU(ctx, sc, "lock-redis")
	if s.Rows, err = e.measure(ctx, suiteLock, []opScenario{
		{name: "lock direct", path: "go-redis SET NX PX + EVALSHA release", op: direct},
		{name: "lock http", path: "HTTP → sidecar → plugin → redis", op: viaHTTP, procs: side, extraPIDs: plugin},
		{name: "lock grpc", path: "gRPC → sidecar → plugin → redis", op: viaGRPC, procs: side, extraPIDs: plugin},
		{name: "lock floor http", path: "HTTP → no-op Go server (ceiling)", op: floorHTTP, procs: floorProcs},
		{name: "lock floor grpc", path: "gRPC → no-op Go server (ceiling)", op: floorGRPC, procs: floorProcs},
		{name: "lock fwd floor http", path: "HTTP → thinnest Go sidecar → no-op plugin", op: fwdHTTP, procs: fwdProcs},
		{name: "lock fwd floor grpc", path: "gRPC → thinnest Go sidecar → no-op plugin", op: fwdGRPC, procs: fwdProcs},
	}); err != nil {
		return nil, err
	}
	s.Goals = append(s.Goals,
		throughputGoal("lock http: throughput vs direct", s.row("lock http"), s.row("lock direct"), goalLockThroughput),
		throughputGoal("lock grpc: throughput vs direct", s.row("lock grpc"), s.row("lock direct"), goalLockThroughput),
		ceilingGoal("lock http: ceiling vs direct", ceilingNoop, s.row("lock floor http"), s.row("lock http"), s.row("lock direct")),
		ceilingGoal("lock grpc: ceiling vs direct", ceilingNoop, s.row("lock floor grpc"), s.row("lock grpc"), s.row("lock direct")),
		ceilingGoal("lock http: sidecar ceiling vs direct", ceilingFwd, s.row("lock fwd floor http"), s.row("lock http"), s.row("lock direct")),
		ceilingGoal("lock grpc: sidecar ceiling vs direct", ceilingFwd, s.row("lock fwd floor grpc"), s.row("lock grpc"), s.row("lock direct")),
	)
	s.Notes = append(s.Notes,
		`"floor" rows send the same two requests, with the same clients, to a no-op Go server (net/http, grpc-go) in its own process: the most any Go server could do on this machine (CPU: that server)`,
		`"fwd floor" rows send them to the thinnest Go sidecar: a net/http + grpc-go server whose handlers only make one gRPC call over a unix socket to a no-op plugin process (CPU: both processes)`)
	return s, nil
}

// writeSecretsFile writes the local.file secrets the bench reads (once per run).
func writeSecretsFile(e *env) (string, error) {
	path := filepath.Join(e.l.dir, "secrets.json")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	b, _ := json.Marshal(map[string]any{secretKey: "s3cr3t-for-the-bench", "db": map[string]string{"user": "bench", "host": "127.0.0.1"}})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("secrets file: %w", err)
	}
	return path, nil
}

// runSecrets measures GetSecret from secretstores.local.file through a sidecar (HTTP and gRPC).
func runSecrets(ctx context.Context, e *env) (*suiteReport, error) {
	s := &suiteReport{Name: suiteSecrets, Title: fmt.Sprintf("Outrigger secrets benchmark: secretstores.local.file GetSecret, %d workers (no goal; no direct baseline)", e.o.concurrency)}
	if !e.l.hasPlugin("secretstores.local.file") {
		e.note(s, "SKIPPED: plugin binary %s missing (run `make build`)", filepath.Join(e.l.plugins, "secretstores-local.file"))
		return s, nil
	}
	file, err := writeSecretsFile(e)
	if err != nil {
		return nil, err
	}
	res, err := e.writeResources("secrets", map[string]string{
		"secrets.yaml": redisComponent(secretStoreName, "secretstores.local.file", "secretsFile", file),
	})
	if err != nil {
		return nil, err
	}
	e.progress("secrets: starting an app-less sidecar with secretstores.local.file")
	sc, err := e.startSidecar(ctx, sidecarSpec{appID: e.tag + "-secrets", resources: res})
	if err != nil {
		return nil, err
	}
	conn, dapr, err := dial(sc)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	hc := httpClient(e.o.concurrency, e.o.timeout)
	defer hc.CloseIdleConnections()
	want := "s3cr3t-for-the-bench"
	viaHTTP := func(ctx context.Context, _ int) error {
		b, err := doHTTP(ctx, hc, http.MethodGet, sc.url("/v1.0/secrets/"+secretStoreName+"/"+secretKey), "", nil, http.StatusOK)
		if err != nil {
			return err
		}
		var got map[string]string
		if err := json.Unmarshal(b, &got); err != nil || got[secretKey] != want {
			return fmt.Errorf("http secret: unexpected answer %.200s", b)
		}
		return nil
	}
	viaGRPC := func(ctx context.Context, _ int) error {
		r, err := dapr.GetSecret(ctx, &runtimev1.GetSecretRequest{StoreName: secretStoreName, Key: secretKey})
		if err == nil && r.GetData()[secretKey] != want {
			err = fmt.Errorf("grpc secret: unexpected answer %v", r.GetData())
		}
		return err
	}
	side, plugin := sidecarCPU(ctx, sc, "secretstores-local.file")
	if s.Rows, err = e.measure(ctx, suiteSecrets, []opScenario{
		{name: "secret http", path: "HTTP → sidecar → plugin (file)", op: viaHTTP, procs: side, extraPIDs: plugin},
		{name: "secret grpc", path: "gRPC → sidecar → plugin (file)", op: viaGRPC, procs: side, extraPIDs: plugin},
	}); err != nil {
		return nil, err
	}
	for _, r := range s.Rows {
		s.Goals = append(s.Goals, goal{Name: r.Name, Value: fmt.Sprintf("%.0f ops/s, p50 %s, p99 %s", r.RPS, dur(r.P50), dur(r.P99)), Target: "(reported, no goal)"})
	}
	return s, nil
}
