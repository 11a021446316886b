package host

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Plugin states reported by PluginStatus.State.
const (
	StateStarting   = "starting"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateStopped    = "stopped"
)

// Plugin kinds reported by PluginStatus.Kind.
const (
	KindBinary = "binary" // launched and supervised through go-plugin
	KindSocket = "socket" // started by someone else, attached through a unix socket
)

// PluginStatus describes one plugin process for the admin endpoint.
type PluginStatus struct {
	Name       string    `json:"name"` // binary name or socket file name
	Kind       string    `json:"kind"` // KindBinary or KindSocket
	Path       string    `json:"path"`
	PID        int       `json:"pid,omitempty"` // 0 when unknown or down
	State      string    `json:"state"`
	Since      time.Time `json:"since"` // when State was entered
	Restarts   int       `json:"restarts"`
	LastError  string    `json:"lastError,omitempty"`
	Services   []string  `json:"services,omitempty"`   // gRPC services it serves
	Components []string  `json:"components,omitempty"` // names of the components it serves
	// Batches counts the UnaryBatch calls made to the plugin (calls queued
	// under load and sent together); BatchedCalls the calls they carried.
	Batches      int64 `json:"batches,omitempty"`
	BatchedCalls int64 `json:"batchedCalls,omitempty"`
}

// launcher starts (or attaches to) a plugin once; the host's supervisor
// calls it again after the plugin died.
type launcher interface {
	start(ctx context.Context) (*run, error)
}

// run is one live plugin process (or socket connection).
type run struct {
	conn *grpc.ClientConn
	pid  int
	// exited reports that the process is gone (always false for sockets,
	// whose loss shows in the connection state).
	exited func() bool
	// healthService is the grpc.health.v1 service name to check.
	healthService string
	// stop closes the connection and ends the process (Close, then Kill).
	stop func()
}

// plugin is one plugin binary or socket shared by all its components, with
// the goroutine that supervises it.
type plugin struct {
	h        *Host
	key      string
	name     string
	kind     string
	path     string
	launcher launcher
	log      *slog.Logger

	// conn is the live connection; nil while down. Component.Conn reads it
	// on every call.
	conn atomic.Pointer[grpc.ClientConn]
	// batch coalesces unary calls on conn under load; nil when the plugin
	// does not serve UnaryBatch. Set before conn, for the same run.
	batch      atomic.Pointer[batcher]
	batchStats batchStats

	started  chan struct{} // closed when the first start finished
	startErr error
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{} // closed when the supervisor returned
	kick     chan struct{} // "check now": a call saw the connection fail

	mu       sync.Mutex
	cur      *run
	state    string
	since    time.Time
	pid      int
	restarts int
	lastErr  string
	services []string
	comps    []*Component
	users    int // components plus provisions in progress
}

func (p *plugin) setState(state string, err error) {
	p.mu.Lock()
	p.state, p.since = state, time.Now()
	if err != nil {
		p.lastErr = err.Error()
	}
	p.mu.Unlock()
}

func (p *plugin) status() PluginStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PluginStatus{
		Name: p.name, Kind: p.kind, Path: p.path, State: p.state, Since: p.since,
		Restarts: p.restarts, LastError: p.lastErr, Services: slices.Clone(p.services),
		Batches: p.batchStats.batches.Load(), BatchedCalls: p.batchStats.calls.Load(),
	}
	if p.state == StateRunning {
		st.PID = p.pid
	}
	for _, c := range p.comps {
		st.Components = append(st.Components, c.Name)
	}
	return st
}

// unavailable is the error calls get while the plugin is down.
func (p *plugin) unavailable() error {
	p.mu.Lock()
	state, last := p.state, p.lastErr
	p.mu.Unlock()
	if last != "" && state != StateRunning {
		return status.Errorf(codes.Unavailable, "plugin %s is %s (last error: %s)", p.name, state, last)
	}
	return status.Errorf(codes.Unavailable, "plugin %s is %s", p.name, state)
}

// checkUnavailable turns an Unavailable error caused by the plugin's
// connection going away into "plugin X is restarting", and wakes the
// supervisor. An Unavailable error the plugin itself returned is kept.
func (p *plugin) checkUnavailable(conn *grpc.ClientConn, err error) error {
	if p.conn.Load() == conn && conn.GetState() == connectivity.Ready && !transportError(err) {
		// The connection may not have noticed its loss yet: give it a
		// moment. Only errors cost this wait, and only Unavailable ones.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		changed := conn.WaitForStateChange(ctx, connectivity.Ready)
		cancel()
		if !changed {
			return err // the plugin itself said Unavailable
		}
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return status.Errorf(codes.Unavailable, "plugin %s is restarting: %s", p.name, status.Convert(err).Message())
}

// launch starts one run: launch or dial, list its services, re-Init the
// components it served before. It publishes the connection last, so calls
// fail fast until every instance is initialised again.
func (p *plugin) launch(ctx context.Context) error {
	r, err := p.launcher.start(ctx)
	if err != nil {
		return err
	}
	services, err := listServices(ctx, r.conn)
	if err != nil {
		r.stop()
		return fmt.Errorf("listing services of plugin %s: %w", p.name, err)
	}
	p.mu.Lock()
	p.cur, p.pid, p.services = r, r.pid, services
	comps := slices.Clone(p.comps)
	p.mu.Unlock()
	for _, c := range comps {
		ictx, cancel := context.WithTimeout(p.ctx, c.timeout)
		if err := c.initialize(ictx, r.conn); err != nil {
			p.log.Error("re-init after plugin restart failed", "component", c.Name, "err", err)
		}
		cancel()
	}
	if slices.Contains(services, batchService) {
		p.batch.Store(newBatcher(r.conn, &p.batchStats))
	} else {
		p.batch.Store(nil)
	}
	p.conn.Store(r.conn)
	p.setState(StateRunning, nil)
	return nil
}

// supervise watches the current run and restarts the plugin with backoff
// when it dies, until the plugin is shut down.
func (p *plugin) supervise() {
	defer close(p.done)
	bo := backoff{max: p.h.cfg.MaxBackoff}
	for {
		up := time.Now()
		reason := p.watch()
		p.conn.Store(nil)
		p.batch.Store(nil)
		p.mu.Lock()
		r := p.cur
		p.cur = nil
		p.mu.Unlock()
		if p.ctx.Err() != nil || p.h.draining.Load() {
			if r != nil {
				r.stop()
			}
			if p.ctx.Err() == nil {
				p.log.Info("plugin exited during shutdown; not restarting", "err", reason)
			}
			return
		}
		p.setState(StateRestarting, reason)
		p.log.Warn("plugin down; restarting", "err", reason)
		if r != nil {
			r.stop()
		}
		if time.Since(up) > 10*time.Second {
			bo.reset()
		}
		for {
			if !p.sleep(bo.next()) {
				return
			}
			p.mu.Lock()
			p.restarts++
			p.mu.Unlock()
			ctx, cancel := context.WithTimeout(p.ctx, p.h.cfg.StartTimeout)
			err := p.launch(ctx)
			cancel()
			if err == nil {
				p.log.Info("plugin restarted", "pid", p.status().PID)
				break
			}
			if p.ctx.Err() != nil {
				return
			}
			p.setState(StateRestarting, err)
			p.log.Warn("plugin restart failed", "err", err)
		}
	}
}

// sleep waits d, or less for a socket plugin whose socket directory
// changed. It returns false when the plugin is shutting down.
func (p *plugin) sleep(d time.Duration) bool {
	var changed <-chan struct{}
	if p.kind == KindSocket {
		changed = p.h.sockets.changed()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-changed:
	case <-p.ctx.Done():
		return false
	}
	return true
}

// watch blocks until the current run is dead and says why: the process
// exited, the connection left READY, or health checks failed.
func (p *plugin) watch() error {
	p.mu.Lock()
	r := p.cur
	p.mu.Unlock()
	if r == nil {
		return fmt.Errorf("plugin %s is not running", p.name)
	}
	const tick = 100 * time.Millisecond
	nextPing := time.Now().Add(p.h.cfg.HealthInterval)
	failures := 0
	for {
		if p.ctx.Err() != nil {
			return p.ctx.Err()
		}
		if r.exited() {
			return fmt.Errorf("plugin %s exited", p.name)
		}
		st := r.conn.GetState()
		if st != connectivity.Ready {
			return fmt.Errorf("plugin %s connection lost (%s)", p.name, st)
		}
		check := false
		ctx, cancel := context.WithTimeout(p.ctx, tick)
		select {
		case <-p.kick:
			check = true
		default:
			r.conn.WaitForStateChange(ctx, st)
		}
		cancel()
		if check || time.Now().After(nextPing) {
			nextPing = time.Now().Add(p.h.cfg.HealthInterval)
			if err := ping(p.ctx, r); err != nil {
				failures++
				p.log.Warn("plugin health check failed", "failures", failures, "err", err)
				if failures >= 3 {
					return fmt.Errorf("plugin %s failed 3 health checks: %w", p.name, err)
				}
			} else {
				failures = 0
			}
		}
	}
}

func ping(ctx context.Context, r *run) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: r.healthService})
	if status.Code(err) == codes.Unimplemented || status.Code(err) == codes.NotFound {
		return nil // a plugin without grpc health: being reachable is enough
	}
	return err
}

// shutdown stops supervision and the plugin: Close, then Kill.
func (p *plugin) shutdown() {
	p.cancel()
	<-p.started
	if p.startErr != nil {
		return
	}
	<-p.done
	p.setState(StateStopped, nil)
}

// backoff yields restart delays: the first retry at once, then doubling
// from 100ms up to max.
type backoff struct {
	n   int
	max time.Duration
}

func (b *backoff) next() time.Duration {
	b.n++
	if b.n == 1 {
		return 0
	}
	d := 100 * time.Millisecond << min(b.n-2, 16)
	return min(d, b.max)
}

func (b *backoff) reset() { b.n = 0 }

// transportError recognises grpc-go's client-side messages for a
// connection that broke under a call.
func transportError(err error) bool {
	msg := status.Convert(err).Message()
	for _, m := range []string{"error reading from server", "connection reset", "transport is closing",
		"connection refused", "connection closed", "broken pipe", "client connection is closing"} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}
