package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/proxy/bench/procstat"
)

// State suite goals (issue 5).
const (
	goalStateAddedP50   = 150 * time.Microsecond // sidecar p50 − direct p50
	goalStateThroughput = 0.50                   // sidecar ops/s ≥ 0.5 × direct
	goalPluginIdleRSS   = 15 << 20
	stateValueSize      = 256
	stateStoreName      = "bench-state"
	unloadedWindowLimit = 3 * time.Second // cap on the window of the 1-worker (unloaded latency) rows
)

// stateWriteScript is state.redis's write script (plugins/state/redis/script.go), so the direct
// baseline does on the server exactly what the plugin does for a Set: a hash {data, version}
// with the version bumped. A plugin is package main and cannot be imported; keep the two equal.
const stateWriteScript = `
local n = #KEYS
for i = 1, n do
  local b = (i - 1) * 5
  local etag, first = ARGV[b + 2], ARGV[b + 3]
  if etag ~= "" or first == "1" then
    local ver = redis.call("HGET", KEYS[i], "version")
    if etag ~= "" then
      if ver ~= etag then
        return redis.error_reply("ETAGMISMATCH " .. KEYS[i])
      end
    elseif ver then
      return redis.error_reply("ETAGMISMATCH " .. KEYS[i])
    end
  end
end
for i = 1, n do
  local b = (i - 1) * 5
  if ARGV[b + 1] == "d" then
    redis.call("DEL", KEYS[i])
  else
    redis.call("HSET", KEYS[i], "data", ARGV[b + 4])
    redis.call("HINCRBY", KEYS[i], "version", 1)
    local ttl = tonumber(ARGV[b + 5])
    if ttl > 0 then
      redis.call("PEXPIRE", KEYS[i], ttl)
    else
      redis.call("PERSIST", KEYS[i])
    end
  end
end
return n
`

func redisComponent(name, typ string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: %s\nspec:\n  type: %s\n  version: v1\n  metadata:\n", name, typ)
	for i := 0; i+1 < len(extra); i += 2 {
		fmt.Fprintf(&b, "  - name: %s\n    value: %q\n", extra[i], extra[i+1])
	}
	return b.String()
}

// runState measures state get and set through a sidecar (HTTP and gRPC) against state.redis,
// next to the same operations made directly with go-redis on the plugin's data layout, and the
// idle RSS of every plugin process.
func runState(ctx context.Context, e *env) (*suiteReport, error) {
	s := &suiteReport{Name: suiteState, Title: fmt.Sprintf("Outrigger state benchmark: state.redis, %d-byte values, %d workers (and 1 for unloaded latency)", stateValueSize, e.o.concurrency)}
	if err := pluginRSS(ctx, e, s); err != nil {
		return nil, err
	}
	if !e.l.hasPlugin("state.redis") {
		e.note(s, "SKIPPED state.redis rows: plugin binary %s missing (run `make build`)", filepath.Join(e.l.plugins, "state-redis"))
		return s, nil
	}
	rdb, err := e.redisClient(ctx)
	if err != nil {
		return nil, err
	}
	appID := e.tag + "-state"
	directPrefix := e.tag + "-direct||"
	defer e.deleteKeys(appID + "||*")
	defer e.deleteKeys(directPrefix + "*")

	res, err := e.writeResources("state", map[string]string{
		"statestore.yaml": redisComponent(stateStoreName, "state.redis", "redisHost", e.o.redisAddr),
	})
	if err != nil {
		return nil, err
	}
	e.progress("state: starting an app-less sidecar with state.redis")
	sc, err := e.startSidecar(ctx, sidecarSpec{appID: appID, resources: res})
	if err != nil {
		return nil, err
	}
	conn, dapr, err := dial(sc)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	value := letters(stateValueSize)
	workers := max(e.o.concurrency, 1)
	key := func(w int) string { return fmt.Sprintf("k-%d", w) }
	httpSetBodies := make([][]byte, workers)
	for w := range workers {
		b, err := json.Marshal([]map[string]any{{"key": key(w), "value": string(value)}})
		if err != nil {
			return nil, fmt.Errorf("encode state body: %w", err)
		}
		httpSetBodies[w] = b
	}
	hc := httpClient(workers, e.o.timeout)
	defer hc.CloseIdleConnections()
	script := redis.NewScript(stateWriteScript)
	if err := script.Load(ctx, rdb).Err(); err != nil {
		return nil, fmt.Errorf("load the state write script into redis: %w", err)
	}

	directGet := func(ctx context.Context, w int) error {
		pipe := rdb.Pipeline()
		vals := pipe.HMGet(ctx, directPrefix+key(w), "data", "version")
		pipe.PTTL(ctx, directPrefix+key(w))
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		if v, _ := vals.Val()[0].(string); len(v) != stateValueSize {
			return fmt.Errorf("direct get: %d bytes", len(v))
		}
		return nil
	}
	directSet := func(ctx context.Context, w int) error {
		return script.EvalSha(ctx, rdb, []string{directPrefix + key(w)}, "s", "", "0", value, "0").Err()
	}
	// The sidecar rows and the floor rows run the same client code: url and dapr pick the server.
	httpGetAt := func(url func(string) string) func(context.Context, int) error {
		return func(ctx context.Context, w int) error {
			b, err := doHTTP(ctx, hc, http.MethodGet, url("/v1.0/state/"+stateStoreName+"/"+key(w)), "", nil, http.StatusOK)
			if err == nil && len(b) < stateValueSize {
				err = fmt.Errorf("http get: %d bytes", len(b))
			}
			return err
		}
	}
	httpSetAt := func(url func(string) string) func(context.Context, int) error {
		return func(ctx context.Context, w int) error {
			_, err := doHTTP(ctx, hc, http.MethodPost, url("/v1.0/state/"+stateStoreName), "application/json", httpSetBodies[w], http.StatusNoContent)
			return err
		}
	}
	grpcGetAt := func(dapr runtimev1.DaprClient) func(context.Context, int) error {
		return func(ctx context.Context, w int) error {
			r, err := dapr.GetState(ctx, &runtimev1.GetStateRequest{StoreName: stateStoreName, Key: key(w)})
			if err == nil && len(r.GetData()) < stateValueSize {
				err = fmt.Errorf("grpc get: %d bytes", len(r.GetData()))
			}
			return err
		}
	}
	grpcSetAt := func(dapr runtimev1.DaprClient) func(context.Context, int) error {
		return func(ctx context.Context, w int) error {
			_, err := dapr.SaveState(ctx, &runtimev1.SaveStateRequest{StoreName: stateStoreName,
				States: []*commonv1.StateItem{{Key: key(w), Value: value}}})
			return err
		}
	}
	httpGet, httpSet := httpGetAt(sc.url), httpSetAt(sc.url)
	grpcGet, grpcSet := grpcGetAt(dapr), grpcSetAt(dapr)

	// Every key exists before the gets (and the sets then overwrite them).
	for w := range workers {
		if err := directSet(ctx, w); err != nil {
			return nil, fmt.Errorf("state: seed direct key: %w", err)
		}
		if err := httpSet(ctx, w); err != nil {
			return nil, fmt.Errorf("state: seed a key through the sidecar: %w; sidecar output: %s", err, sc.logs)
		}
	}

	// The plugin hop alone: the same plugin binary on a socket, called directly.
	hop, err := startPluginHop(ctx, e)
	if err != nil {
		return nil, err
	}
	defer hop.close()
	hopKey := func(w int) string { return e.tag + "-hop||" + key(w) }
	defer e.deleteKeys(e.tag + "-hop||*")
	for w := range workers {
		if err := hop.set(ctx, hopKey(w), value); err != nil {
			return nil, fmt.Errorf("state: seed a key through the plugin alone: %w", err)
		}
	}
	hopGet := func(ctx context.Context, w int) error { return hop.get(ctx, hopKey(w), stateValueSize) }
	hopSet := func(ctx context.Context, w int) error { return hop.set(ctx, hopKey(w), value) }
	hopProcs := []*proc{hop.proc}

	// The ceilings: the same client calls answered by a no-op Go server in its own process and by
	// the thinnest Go sidecar (one gRPC call to a no-op plugin per request).
	ceil, err := startCeilings(ctx, e)
	if err != nil {
		return nil, err
	}
	defer ceil.close()
	floorHTTPGet, floorHTTPSet := httpGetAt(ceil.floor.url), httpSetAt(ceil.floor.url)
	floorGRPCGet, floorGRPCSet := grpcGetAt(ceil.floorDapr), grpcSetAt(ceil.floorDapr)
	fwdHTTPGet, fwdHTTPSet := httpGetAt(ceil.fwd.url), httpSetAt(ceil.fwd.url)
	fwdGRPCGet, fwdGRPCSet := grpcGetAt(ceil.fwdDapr), grpcSetAt(ceil.fwdDapr)
	floorProcs, fwdProcs := []*proc{ceil.floor.proc}, ceil.fwd.procs()

	side, plugin := sidecarCPU(ctx, sc, "state-redis")
	unloaded := min(e.o.duration, unloadedWindowLimit)
	var scs []opScenario
	for _, c := range []struct {
		conc int
		win  time.Duration
	}{{e.o.concurrency, 0}, {1, unloaded}} {
		suffix := ""
		if c.conc == 1 {
			suffix = " c=1"
		}
		scs = append(scs,
			opScenario{name: "get direct" + suffix, path: "go-redis HMGET+PTTL", conc: c.conc, duration: c.win, op: directGet},
			opScenario{name: "get plugin" + suffix, path: "gRPC → plugin → redis (no sidecar)", conc: c.conc, duration: c.win, op: hopGet, procs: hopProcs},
			opScenario{name: "get http" + suffix, path: "HTTP → sidecar → plugin → redis", conc: c.conc, duration: c.win, op: httpGet, procs: side, extraPIDs: plugin},
			opScenario{name: "get grpc" + suffix, path: "gRPC → sidecar → plugin → redis", conc: c.conc, duration: c.win, op: grpcGet, procs: side, extraPIDs: plugin},
			opScenario{name: "set direct" + suffix, path: "go-redis EVALSHA (plugin's script)", conc: c.conc, duration: c.win, op: directSet},
			opScenario{name: "set plugin" + suffix, path: "gRPC → plugin → redis (no sidecar)", conc: c.conc, duration: c.win, op: hopSet, procs: hopProcs},
			opScenario{name: "set http" + suffix, path: "HTTP → sidecar → plugin → redis", conc: c.conc, duration: c.win, op: httpSet, procs: side, extraPIDs: plugin},
			opScenario{name: "set grpc" + suffix, path: "gRPC → sidecar → plugin → redis", conc: c.conc, duration: c.win, op: grpcSet, procs: side, extraPIDs: plugin},
		)
		if c.win == 0 { // the ceiling at -c workers only
			scs = append(scs,
				opScenario{name: "get floor http", path: "HTTP → no-op Go server (ceiling)", op: floorHTTPGet, procs: floorProcs},
				opScenario{name: "get floor grpc", path: "gRPC → no-op Go server (ceiling)", op: floorGRPCGet, procs: floorProcs},
				opScenario{name: "set floor http", path: "HTTP → no-op Go server (ceiling)", op: floorHTTPSet, procs: floorProcs},
				opScenario{name: "set floor grpc", path: "gRPC → no-op Go server (ceiling)", op: floorGRPCSet, procs: floorProcs},
				opScenario{name: "get fwd floor http", path: "HTTP → thinnest Go sidecar → no-op plugin", op: fwdHTTPGet, procs: fwdProcs},
				opScenario{name: "get fwd floor grpc", path: "gRPC → thinnest Go sidecar → no-op plugin", op: fwdGRPCGet, procs: fwdProcs},
				opScenario{name: "set fwd floor http", path: "HTTP → thinnest Go sidecar → no-op plugin", op: fwdHTTPSet, procs: fwdProcs},
				opScenario{name: "set fwd floor grpc", path: "gRPC → thinnest Go sidecar → no-op plugin", op: fwdGRPCSet, procs: fwdProcs},
			)
		}
	}
	if s.Rows, err = e.measure(ctx, suiteState, scs); err != nil {
		return nil, err
	}
	for _, op := range []string{"get", "set"} {
		for _, api := range []string{"http", "grpc"} {
			s.Goals = append(s.Goals,
				addedLatencyGoal(fmt.Sprintf("%s %s: p50 added @c=%d", op, api, e.o.concurrency), s.row(op+" "+api), s.row(op+" direct"), goalStateAddedP50),
				addedLatencyGoal(op+" "+api+": p50 added @c=1 (unloaded)", s.row(op+" "+api+" c=1"), s.row(op+" direct c=1"), goalStateAddedP50),
				throughputGoal(fmt.Sprintf("%s %s: throughput vs direct @c=%d", op, api, e.o.concurrency), s.row(op+" "+api), s.row(op+" direct"), goalStateThroughput),
			)
		}
	}
	for _, op := range []string{"get", "set"} {
		s.Goals = append(s.Goals,
			addedLatencyGoal(op+" plugin hop alone: p50 added @c=1", s.row(op+" plugin c=1"), s.row(op+" direct c=1"), goalStateAddedP50))
	}
	for _, op := range []string{"get", "set"} {
		for _, api := range []string{"http", "grpc"} {
			s.Goals = append(s.Goals,
				ceilingGoal(fmt.Sprintf("%s %s: ceiling vs direct @c=%d", op, api, e.o.concurrency), ceilingNoop,
					s.row(op+" floor "+api), s.row(op+" "+api), s.row(op+" direct")),
				ceilingGoal(fmt.Sprintf("%s %s: sidecar ceiling vs direct @c=%d", op, api, e.o.concurrency), ceilingFwd,
					s.row(op+" fwd floor "+api), s.row(op+" "+api), s.row(op+" direct")))
		}
	}
	s.Notes = append(s.Notes,
		"CPU-s/1k ops counts the sidecar and the state-redis plugin process (not Redis, not the client); for the floor rows, the no-op server; for the fwd floor rows, both of its processes",
		`"floor" rows send the same requests, with the same clients, to a no-op Go server (net/http, grpc-go) in its own process: the most any Go server could do on this machine`,
		`"fwd floor" rows send them to the thinnest Go sidecar: a net/http + grpc-go server whose handlers only make one gRPC call over a unix socket to a no-op plugin process (the hop the architecture mandates)`,
		`"plugin" rows call the state-redis binary on its own socket with the Dapr pluggable StateStore client: the plugin hop with no sidecar (CPU: the plugin only)`)
	return s, nil
}

// pluginRSS starts one app-less sidecar with a component of every plugin type the bench uses
// (those whose binaries are present), lets it settle, and reads each plugin process's VmRSS
// (pids from GET /v1.0/metadata). The sidecar is stopped afterwards.
func pluginRSS(ctx context.Context, e *env, s *suiteReport) error {
	type comp struct{ file, yaml string }
	var comps []comp
	add := func(typ string, md ...string) {
		if !e.l.hasPlugin(typ) {
			e.note(s, "plugin idle RSS: SKIPPED %s (binary missing)", typ)
			return
		}
		name := "rss-" + strings.ReplaceAll(typ, ".", "-")
		comps = append(comps, comp{name + ".yaml", redisComponent(name, typ, md...)})
	}
	dir := e.l.dir
	add("state.redis", "redisHost", e.o.redisAddr)
	add("state.sqlite", "connectionString", filepath.Join(dir, "rss-state.db"))
	add("pubsub.redis", "redisHost", e.o.redisAddr)
	add("pubsub.sqlite", "connectionString", filepath.Join(dir, "rss-pubsub.db"))
	add("lock.redis", "redisHost", e.o.redisAddr)
	add("lock.sqlite", "connectionString", filepath.Join(dir, "rss-lock.db"))
	if secrets, err := writeSecretsFile(e); err == nil {
		add("secretstores.local.file", "secretsFile", secrets)
	} else {
		return err
	}
	if len(comps) == 0 {
		return nil
	}
	files := map[string]string{}
	for _, c := range comps {
		files[c.file] = c.yaml
	}
	res, err := e.writeResources("rss", files)
	if err != nil {
		return err
	}
	e.progress("state: plugin idle RSS: one sidecar with %d components, settling %v", len(comps), e.o.settle)
	sc, err := e.startSidecar(ctx, sidecarSpec{appID: e.tag + "-rss", resources: res})
	if err != nil {
		return err
	}
	defer sc.Stop(5 * time.Second)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(e.o.settle):
	}
	pids, err := pluginPIDs(ctx, sc)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(pids))
	for n := range pids {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		m, err := procstat.Mem(pids[n])
		if err != nil {
			return fmt.Errorf("idle RSS of plugin %s: %w", n, err)
		}
		ok := m.RSS < goalPluginIdleRSS
		s.Goals = append(s.Goals, goal{Name: "plugin " + n + " idle RSS", Value: fmt.Sprintf("%.1f MiB", float64(m.RSS)/(1<<20)), Target: "< 15 MiB", Met: &ok})
	}
	if len(names) == 0 {
		e.note(s, "plugin idle RSS: the sidecar reported no plugin processes")
	}
	return nil
}
