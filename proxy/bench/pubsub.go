package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/proxy/bench/loadgen"
)

// Pub/sub suite goals (issue 6).
const (
	goalPubsubRedisRate = 5000 // messages/s end to end through pubsub.redis
	goalPubsubRatio     = 0.40 // of the direct XADD/XREADGROUP baseline
	pubsubName          = "bench-ps"
	pubsubPadding       = 128 // bytes of filler in each message
)

// deliveries is the subscriber side of a pub/sub run: it records end-to-end latency (receive
// time − the send timestamp in the payload) for messages received inside the measured window,
// and returns one publishing credit per message received, which bounds the messages in flight.
type deliveries struct {
	credits  chan struct{} // one token per message published and not yet received
	received atomic.Uint64
	mu       sync.Mutex
	open     bool
	hist     *loadgen.Histogram
}

func newDeliveries(inFlight int) *deliveries {
	return &deliveries{credits: make(chan struct{}, inFlight), hist: loadgen.NewHistogram()}
}

// acquire takes a credit before a publish, waiting while inFlight messages are undelivered.
func (d *deliveries) acquire(ctx context.Context) error {
	select {
	case d.credits <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no delivery frees an in-flight slot (%d in flight): %w", cap(d.credits), ctx.Err())
	}
}

// release gives a credit back (a failed publish, or a delivery). Redeliveries may release more
// than was taken; the extra ones are ignored.
func (d *deliveries) release() {
	select {
	case <-d.credits:
	default:
	}
}

func (d *deliveries) record(sentUnixNano int64) {
	lat := time.Duration(time.Now().UnixNano() - sentUnixNano)
	d.mu.Lock()
	if d.open {
		d.hist.Record(lat)
	}
	d.mu.Unlock()
	d.received.Add(1)
	d.release()
}

func (d *deliveries) setWindow(open bool) {
	d.mu.Lock()
	d.open = open
	d.mu.Unlock()
}

// drain waits until every published message has been received (no credit outstanding).
func (d *deliveries) drain(ctx context.Context, within time.Duration) int {
	deadline := time.Now().Add(within)
	for len(d.credits) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	return len(d.credits)
}

// message is the payload published: a send timestamp, a sequence number, filler.
type message struct {
	TS  int64  `json:"ts"`
	Seq uint64 `json:"seq"`
	Pad string `json:"pad"`
}

func newPayload(seq uint64, pad string) []byte {
	return fmt.Appendf(nil, `{"ts":%d,"seq":%d,"pad":%q}`, time.Now().UnixNano(), seq, pad)
}

// subscriberApp is the in-process HTTP app behind the subscriber sidecar: it declares one
// programmatic subscription and records each delivered CloudEvent.
type subscriberApp struct {
	srv   *http.Server
	port  int
	topic string
	d     atomic.Pointer[deliveries]
}

func startSubscriberApp(topic string) (*subscriberApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("subscriber app: listen: %w", err)
	}
	a := &subscriberApp{port: ln.Addr().(*net.TCPAddr).Port, topic: topic}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dapr/subscribe", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode([]map[string]string{{"pubsubname": pubsubName, "topic": a.topic, "route": "/deliver"}}) //nolint:errcheck // client gone
	})
	mux.HandleFunc("POST /deliver", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ce struct {
			Data message `json:"data"`
		}
		if err := json.Unmarshal(b, &ce); err != nil || ce.Data.TS == 0 {
			// Not ours or malformed: drop it (SUCCESS) rather than have it redelivered forever.
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"status":"DROP"}`) //nolint:errcheck // client gone
			return
		}
		if d := a.d.Load(); d != nil {
			d.record(ce.Data.TS)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"SUCCESS"}`) //nolint:errcheck // client gone
	})
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go a.srv.Serve(ln) //nolint:errcheck // ends with Close
	return a, nil
}

func (a *subscriberApp) close() { a.srv.Close() }

// runPubsub measures publish → deliver through two sidecars (an app-less publisher, a
// subscriber with an HTTP app) for pubsub.redis and pubsub.sqlite, next to go-redis
// XADD/XREADGROUP directly.
func runPubsub(ctx context.Context, e *env) (*suiteReport, error) {
	s := &suiteReport{Name: suitePubsub, Title: fmt.Sprintf("Outrigger pub/sub benchmark: publish → deliver, %d publishers, at most %d messages in flight, ~%d-byte JSON messages; ops/s = messages received/s, latency = end to end",
		e.o.concurrency, e.o.pubsubInFlight, pubsubPadding+50)}
	rdb, err := e.redisClient(ctx)
	if err != nil {
		return nil, err
	}
	defer e.deleteKeys(e.tag + "-ps-*")
	pad := strings.Repeat("x", pubsubPadding)

	direct, err := pubsubDirect(ctx, e, rdb, pad)
	if err != nil {
		return nil, err
	}
	s.Rows = append(s.Rows, direct)
	for _, broker := range []string{"redis", "sqlite"} {
		typ := "pubsub." + broker
		if !e.l.hasPlugin(typ) {
			e.note(s, "SKIPPED %s: plugin binary %s is missing (run `make build`)", typ, filepath.Join(e.l.plugins, "pubsub-"+broker))
			continue
		}
		row, err := pubsubSidecars(ctx, e, broker, pad)
		if err != nil {
			return nil, err
		}
		s.Rows = append(s.Rows, row)
	}
	if r := s.row("pubsub.redis"); r != nil {
		ok := r.RPS >= goalPubsubRedisRate
		s.Goals = append(s.Goals,
			goal{Name: "pubsub.redis end-to-end rate", Value: fmt.Sprintf("%.0f msg/s", r.RPS), Target: fmt.Sprintf("≥ %d msg/s", goalPubsubRedisRate), Met: &ok},
			throughputGoal("pubsub.redis vs direct XADD/XREADGROUP", r, s.row("direct redis streams"), goalPubsubRatio))
	} else {
		s.Goals = append(s.Goals, goal{Name: "pubsub.redis end-to-end rate", Value: "not measured (SKIPPED)", Target: fmt.Sprintf("≥ %d msg/s", goalPubsubRedisRate)})
	}
	if r := s.row("pubsub.sqlite"); r != nil {
		s.Goals = append(s.Goals, goal{Name: "pubsub.sqlite end-to-end rate", Value: fmt.Sprintf("%.0f msg/s, p50 %s", r.RPS, dur(r.P50)), Target: "(reported, no goal)"})
	}
	return s, nil
}

// measurePubsub runs publish in a closed loop (one credit per message) -rounds times and builds
// the row from the deliveries seen in the windows.
func measurePubsub(ctx context.Context, e *env, name, path string, d *deliveries, publish loadgen.Op, procs []*proc, pids []int) (opRow, error) {
	row := opRow{Name: name, Path: path, Concurrency: e.o.concurrency}
	var published atomic.Uint64
	var cpu time.Duration
	for round := 1; round <= e.o.rounds; round++ {
		e.progress("pubsub: round %d/%d, %s  (%d publishers, %v warm-up + %v)", round, e.o.rounds, name, e.o.concurrency, e.o.warmup, e.o.duration)
		var before time.Duration
		res, err := loadgen.RunOps(ctx, loadgen.OpsConfig{
			Op: func(ctx context.Context, w int) error {
				if err := d.acquire(ctx); err != nil {
					return err
				}
				if err := publish(ctx, w); err != nil {
					d.release()
					return err
				}
				published.Add(1)
				return nil
			},
			Concurrency: e.o.concurrency, Warmup: e.o.warmup, Duration: e.o.duration,
			MaxRequests: e.o.maxRequests, Timeout: e.o.timeout,
			OnWindowStart: func() { before = cpuOf(procs, pids); d.setWindow(true) },
			OnWindowEnd:   func() { d.setWindow(false); cpu += cpuOf(procs, pids) - before },
		})
		if err != nil {
			return row, fmt.Errorf("pubsub %s: %w", name, err)
		}
		row.Errors += res.Errors
		row.Window += res.Window
		row.ErrSample = append(row.ErrSample, res.ErrSample...)
		if left := d.drain(ctx, 30*time.Second); left > 0 {
			row.Errors += uint64(left)
			row.ErrSample = append(row.ErrSample, fmt.Sprintf("%d published messages not delivered within 30s after the window", left))
		}
		for _, p := range procs {
			if exited, err := p.exitErr(); exited {
				return row, fmt.Errorf("pubsub %s: %w; output: %s", name, err, p.logs)
			}
		}
	}
	d.mu.Lock()
	fillLatency(&row, d.hist)
	d.mu.Unlock()
	if row.Requests > 0 && len(procs)+len(pids) > 0 {
		row.CPU1k = cpu.Seconds() / (float64(row.Requests) / 1000)
	}
	row.Note = fmt.Sprintf("%d published, %d received in all", published.Load(), d.received.Load())
	if len(row.ErrSample) > 5 {
		row.ErrSample = row.ErrSample[:5]
	}
	return row, nil
}

// pubsubDirect is the baseline: XADD by the publishers, one XREADGROUP loop acking in batches.
func pubsubDirect(ctx context.Context, e *env, rdb *redis.Client, pad string) (opRow, error) {
	stream, group := e.tag+"-ps-direct", "bench"
	if err := rdb.XGroupCreateMkStream(ctx, stream, group, "$").Err(); err != nil {
		return opRow{}, fmt.Errorf("direct pub/sub: create group: %w", err)
	}
	d := newDeliveries(e.o.pubsubInFlight)
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var readErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for rctx.Err() == nil {
			res, err := rdb.XReadGroup(rctx, &redis.XReadGroupArgs{Group: group, Consumer: "c1", Streams: []string{stream, ">"}, Count: 256, Block: 100 * time.Millisecond}).Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				if rctx.Err() == nil {
					readErr.Store(err.Error())
					time.Sleep(10 * time.Millisecond)
				}
				continue
			}
			var ids []string
			for _, st := range res {
				for _, m := range st.Messages {
					ids = append(ids, m.ID)
					raw, _ := m.Values["data"].(string)
					var msg message
					if json.Unmarshal([]byte(raw), &msg) == nil && msg.TS != 0 {
						d.record(msg.TS)
					}
				}
			}
			if len(ids) > 0 {
				rdb.XAck(rctx, stream, group, ids...) //nolint:errcheck // a failed ack only leaves entries pending
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()
	var seq atomic.Uint64
	publish := func(ctx context.Context, _ int) error {
		return rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"data", newPayload(seq.Add(1), pad)}}).Err()
	}
	row, err := measurePubsub(ctx, e, "direct redis streams", "go-redis XADD → XREADGROUP+XACK", d, publish, nil, nil)
	if v := readErr.Load(); v != nil {
		row.ErrSample = append(row.ErrSample, "XREADGROUP: "+v.(string))
	}
	return row, err
}

// pubsubSidecars runs one broker through a publisher sidecar and a subscriber sidecar.
func pubsubSidecars(ctx context.Context, e *env, broker, pad string) (opRow, error) {
	topic := e.tag + "-ps-" + broker
	var md []string
	if broker == "redis" {
		// Dapr's default of 10 delivery workers caps a fast broker; a sidecar
		// tuned for throughput raises it, as an operator would.
		md = []string{"redisHost", e.o.redisAddr, "concurrency", "64"}
	} else {
		md = []string{"connectionString", filepath.Join(e.l.dir, "pubsub-bench.db")}
	}
	res, err := e.writeResources("pubsub-"+broker, map[string]string{"pubsub.yaml": redisComponent(pubsubName, "pubsub."+broker, md...)})
	if err != nil {
		return opRow{}, err
	}
	app, err := startSubscriberApp(topic)
	if err != nil {
		return opRow{}, err
	}
	defer app.close()
	e.progress("pubsub: starting publisher and subscriber sidecars with pubsub.%s", broker)
	sub, err := e.startSidecar(ctx, sidecarSpec{appID: e.tag + "-sub-" + broker, appPort: app.port, resources: res})
	if err != nil {
		return opRow{}, err
	}
	defer sub.Stop(5 * time.Second)
	pub, err := e.startSidecar(ctx, sidecarSpec{appID: e.tag + "-pub-" + broker, resources: res})
	if err != nil {
		return opRow{}, err
	}
	defer pub.Stop(5 * time.Second)

	hc := httpClient(e.o.concurrency, e.o.timeout)
	defer hc.CloseIdleConnections()
	url := pub.url("/v1.0/publish/" + pubsubName + "/" + topic)
	var seq atomic.Uint64
	publish := func(ctx context.Context, _ int) error {
		_, err := doHTTP(ctx, hc, http.MethodPost, url, "application/json", newPayload(seq.Add(1), pad), http.StatusNoContent)
		return err
	}

	// The subscription starts once the subscriber sidecar sees its app: publish until one arrives.
	probe := newDeliveries(1 << 20)
	app.d.Store(probe)
	deadline := time.Now().Add(30 * time.Second)
	for probe.received.Load() == 0 {
		if err := publish(ctx, 0); err != nil && time.Now().After(deadline) {
			return opRow{}, fmt.Errorf("pubsub.%s: publish: %w; publisher output: %s", broker, err, pub.logs)
		}
		if time.Now().After(deadline) {
			return opRow{}, fmt.Errorf("pubsub.%s: nothing delivered to the subscriber app within 30s; subscriber output: %s", broker, sub.logs)
		}
		select {
		case <-ctx.Done():
			return opRow{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	time.Sleep(200 * time.Millisecond) // let the probes' stragglers arrive before counting starts

	d := newDeliveries(e.o.pubsubInFlight)
	app.d.Store(d)
	procs := []*proc{pub.proc, sub.proc}
	var pids []int
	for _, s := range []*sidecar{pub, sub} {
		_, p := sidecarCPU(ctx, s, "pubsub-"+broker)
		pids = append(pids, p...)
	}
	return measurePubsub(ctx, e, "pubsub."+broker, "HTTP publish → sidecar → plugin → "+broker+" → plugin → sidecar → app", d, publish, procs, pids)
}
