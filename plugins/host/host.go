package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/proxy/resources"
)

// ErrIgnored marks the error Provision returns for a component that failed
// but has spec.ignoreErrors: the caller logs nothing more and carries on
// without it.
var ErrIgnored = errors.New("component skipped (spec.ignoreErrors)")

// ErrUnknownType is wrapped by the error for a component type no plugin
// binary or socket provides; the message lists the available types.
var ErrUnknownType = errors.New("unknown component type")

// Config configures a Host. Zero fields take their defaults.
type Config struct {
	// PluginsDir holds the plugin binaries, named <category>-<impl>
	// (default: the "plugins" folder next to the running executable).
	PluginsDir string
	// SocketsDir is watched for plugin sockets (default:
	// $DAPR_COMPONENTS_SOCKETS_FOLDER, else /tmp/dapr-components-sockets).
	SocketsDir string
	Logger     *slog.Logger
	// InitTimeoutDefault bounds Provision of a Component whose InitTimeout
	// is zero (default 5s).
	InitTimeoutDefault time.Duration
	// HealthInterval is the period of plugin health checks (default 5s).
	HealthInterval time.Duration
	// MaxBackoff caps the delay between restart attempts (default 5s).
	MaxBackoff time.Duration
	// StartTimeout bounds a restart (launch and re-Init) (default 10s).
	StartTimeout time.Duration
	// ExtraServices adds component services beyond Dapr's five (Outrigger's
	// own plugin services).
	ExtraServices []ServiceType
}

// Host launches, attaches to, supervises and cleans up plugins, and turns
// Component manifests into live Components.
type Host struct {
	cfg      Config
	log      *slog.Logger
	services serviceTable
	sockets  *socketIndex
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	// draining is set when the sidecar begins to shut down: a plugin that
	// dies then (e.g. SIGTERM sent to the whole process group) is not
	// restarted.
	draining atomic.Bool
	// generation numbers the instances Replace creates.
	generation atomic.Int64

	mu         sync.Mutex
	closed     bool
	plugins    map[string]*plugin    // key: kind + ":" + path
	components map[string]*Component // key: category + "/" + name
}

// New returns a Host and starts watching the sockets folder (creating it
// if needed).
func New(cfg Config) (*Host, error) {
	if cfg.PluginsDir == "" {
		cfg.PluginsDir = defaultPluginsDir()
	}
	if cfg.SocketsDir == "" {
		cfg.SocketsDir = os.Getenv(sdk.SocketsDirEnv)
	}
	if cfg.SocketsDir == "" {
		cfg.SocketsDir = sdk.DefaultSocketsDir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InitTimeoutDefault <= 0 {
		cfg.InitTimeoutDefault = resources.DefaultInitTimeout
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	var err error
	if cfg.PluginsDir, err = filepath.Abs(cfg.PluginsDir); err != nil {
		return nil, fmt.Errorf("plugins dir: %w", err)
	}
	if cfg.SocketsDir, err = filepath.Abs(cfg.SocketsDir); err != nil {
		return nil, fmt.Errorf("sockets dir: %w", err)
	}
	services := append(serviceTable(daprServiceTypes()), cfg.ExtraServices...)
	log := cfg.Logger.With("component", "plugins")
	h := &Host{
		cfg: cfg, log: log, services: services,
		sockets:    newSocketIndex(cfg.SocketsDir, services, log),
		plugins:    map[string]*plugin{},
		components: map[string]*Component{},
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if err := os.MkdirAll(cfg.SocketsDir, 0o755); err != nil {
		log.Warn("cannot create the sockets folder", "dir", cfg.SocketsDir, "err", err)
	}
	h.sockets.scanDir(h.ctx)
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.sockets.watch(h.ctx) }()
	return h, nil
}

// Provision turns a Component manifest into a live Component: it finds the
// plugin (binary <PluginsDir>/<category>-<impl>, else a socket
// <SocketsDir>/<impl>.* serving the category), launches or attaches to it
// (once per binary or socket, shared by its components), then calls Init,
// Features and Ping, all within the component's initTimeout. A type served
// by a socket that is not there yet is waited for, up to initTimeout.
//
// On failure nothing is left behind (a plugin launched for this component
// alone is stopped). With spec.ignoreErrors the error wraps ErrIgnored and
// is logged as a warning.
func (h *Host) Provision(ctx context.Context, rc resources.Component) (*Component, error) {
	c, err := h.provision(ctx, rc)
	if err != nil {
		err = fmt.Errorf("component %s (%s, %s): %w", rc.Name, rc.Type, rc.Location(), err)
		if rc.IgnoreErrors {
			h.log.Warn("component failed; skipped because of ignoreErrors", "component", rc.Name, "err", err)
			return nil, fmt.Errorf("%w: %w", ErrIgnored, err)
		}
		return nil, err
	}
	h.log.Info("component ready", "component", c.Name, "type", c.Type, "plugin", c.plugin.name,
		"features", c.Features())
	return c, nil
}

// Replace provisions rc as the successor of old, a provisioned component of
// the same category and name (a changed Component file). The new one runs
// beside the old under its own instance name on the plugin (name@N), so
// calls in flight on old finish; once it is ready it takes old's place in
// Lookup, and the caller removes old (Remove) when old has drained. On error
// old stays in place.
func (h *Host) Replace(ctx context.Context, old *Component, rc resources.Component) (*Component, error) {
	if old == nil || old.Name != rc.Name || old.Category != rc.Category() {
		return nil, fmt.Errorf("replace: %q is not the successor of the component given", rc.Name)
	}
	c, err := h.provisionAs(ctx, rc, old, fmt.Sprintf("%s@%d", rc.Name, h.generation.Add(1)))
	if err != nil {
		return nil, fmt.Errorf("component %q (%s): %w", rc.Name, rc.Location(), err)
	}
	return c, nil
}

func (h *Host) provision(ctx context.Context, rc resources.Component) (*Component, error) {
	return h.provisionAs(ctx, rc, nil, rc.Name)
}

// provisionAs provisions rc under instance name instance; with replacing set,
// rc takes replacing's place instead of claiming a free name.
func (h *Host) provisionAs(ctx context.Context, rc resources.Component, replacing *Component, instance string) (*Component, error) {
	category, impl, ok := splitType(rc.Type)
	if !ok {
		return nil, fmt.Errorf("type %q is not <category>.<name>", rc.Type)
	}
	if rc.Name == "" {
		return nil, errors.New("no name")
	}
	key := category + "/" + rc.Name
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("plugin host is closed")
	}
	unreserve := func() {}
	if replacing != nil {
		if h.components[key] != replacing {
			h.mu.Unlock()
			return nil, fmt.Errorf("component %q is no longer the provisioned %s component of that name", rc.Name, category)
		}
		h.mu.Unlock()
	} else {
		if _, dup := h.components[key]; dup {
			h.mu.Unlock()
			return nil, fmt.Errorf("a %s component named %q is already provisioned", category, rc.Name)
		}
		h.components[key] = nil // reserve the name
		h.mu.Unlock()
		unreserve = func() {
			h.mu.Lock()
			if h.components[key] == nil {
				delete(h.components, key)
			}
			h.mu.Unlock()
		}
	}

	timeout := rc.InitTimeout
	if timeout <= 0 {
		timeout = h.cfg.InitTimeoutDefault
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	p, err := h.acquire(ctx, category, impl, rc.Type)
	if err != nil {
		unreserve()
		return nil, err
	}
	p.mu.Lock()
	served := p.services
	p.mu.Unlock()
	svcs := h.services.forCategory(category, served)
	if len(svcs) == 0 {
		h.release(p)
		unreserve()
		return nil, fmt.Errorf("plugin %s does not serve %s components (it serves %s)",
			p.name, category, strings.Join(served, ", "))
	}
	if category == "bindings" {
		svcs = bindingDirections(svcs, rc.Properties()["direction"])
	}
	c := newComponent(rc, instance, p, svcs, timeout)
	if err := h.initOnPlugin(ctx, c); err != nil {
		h.release(p)
		unreserve()
		return nil, err
	}
	p.mu.Lock()
	p.comps = append(p.comps, c)
	p.mu.Unlock()
	h.mu.Lock()
	h.components[key] = c
	h.mu.Unlock()
	return c, nil
}

// initOnPlugin initialises c on p's live connection, waiting (within ctx)
// while p restarts.
func (h *Host) initOnPlugin(ctx context.Context, c *Component) error {
	for {
		conn := c.plugin.conn.Load()
		if conn != nil {
			err := c.initialize(ctx, conn)
			if err == nil || c.plugin.conn.Load() == conn || status.Code(err) != codes.Unavailable {
				return err
			}
			// the plugin died under us: wait for its restart
		}
		select {
		case <-ctx.Done():
			return c.fail(fmt.Errorf("plugin %s not running: %w", c.plugin.name, ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// bindingDirections keeps the binding services spec.metadata "direction"
// asks for ("input", "output", "input, output"; empty = whatever the
// plugin serves).
func bindingDirections(svcs []ServiceType, direction string) []ServiceType {
	if strings.TrimSpace(direction) == "" {
		return svcs
	}
	var out []ServiceType
	for _, s := range svcs {
		for _, d := range strings.Split(direction, ",") {
			d = strings.TrimSpace(strings.ToLower(d))
			if (d == "input" && strings.HasSuffix(s.Service, "InputBinding")) ||
				(d == "output" && strings.HasSuffix(s.Service, "OutputBinding")) {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return svcs
	}
	return out
}

// acquire finds the plugin for a type and returns it started, counting one
// more user; release undoes it.
func (h *Host) acquire(ctx context.Context, category, impl, typ string) (*plugin, error) {
	bin := filepath.Join(h.cfg.PluginsDir, category+"-"+impl)
	if isExecutable(bin) {
		return h.getOrStart(ctx, KindBinary, bin, func() launcher {
			return &binaryLauncher{path: bin, name: filepath.Base(bin), socketsDir: h.cfg.SocketsDir, log: h.log}
		})
	}
	// A socket: wait for it (up to ctx's deadline, i.e. initTimeout).
	rescan := time.NewTicker(250 * time.Millisecond)
	defer rescan.Stop()
	for {
		changed := h.sockets.changed()
		if path, ok := h.sockets.find(category, impl); ok {
			return h.getOrStart(ctx, KindSocket, path, func() launcher { return &socketLauncher{path: path} })
		}
		select {
		case <-changed:
		case <-rescan.C:
			h.sockets.scanDir(ctx)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w %q: no plugin binary %s and no socket %s.sock in %s serving %s; available: %s",
				ErrUnknownType, typ, bin, impl, h.cfg.SocketsDir, category, availableList(h.Catalog()))
		}
	}
}

func availableList(types []string) string {
	if len(types) == 0 {
		return "none"
	}
	return strings.Join(types, ", ")
}

func (h *Host) getOrStart(ctx context.Context, kind, path string, newLauncher func() launcher) (*plugin, error) {
	key := kind + ":" + path
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("plugin host is closed")
	}
	p, ok := h.plugins[key]
	if ok {
		p.users++
		h.mu.Unlock()
		select {
		case <-p.started:
		case <-ctx.Done():
			h.release(p)
			return nil, fmt.Errorf("waiting for plugin %s to start: %w", p.name, ctx.Err())
		}
		if p.startErr != nil {
			h.release(p)
			return nil, p.startErr
		}
		return p, nil
	}
	name := filepath.Base(path)
	p = &plugin{
		h: h, key: key, name: name, kind: kind, path: path, launcher: newLauncher(),
		log:     h.log.With("plugin", name),
		started: make(chan struct{}), done: make(chan struct{}), kick: make(chan struct{}, 1),
		state: StateStarting, since: time.Now(), users: 1,
	}
	p.ctx, p.cancel = context.WithCancel(h.ctx)
	h.plugins[key] = p
	h.mu.Unlock()

	err := p.launch(ctx)
	if err != nil {
		p.startErr = err
		p.setState(StateStopped, err)
		p.cancel()
		close(p.started)
		h.mu.Lock()
		if h.plugins[key] == p {
			delete(h.plugins, key)
		}
		h.mu.Unlock()
		return nil, err
	}
	p.log.Info("plugin started", "kind", kind, "path", path, "pid", p.status().PID)
	h.wg.Add(1)
	go func() { defer h.wg.Done(); p.supervise() }()
	close(p.started)
	return p, nil
}

// release drops one user of p; the last one stops the plugin.
func (h *Host) release(p *plugin) {
	h.mu.Lock()
	p.users--
	last := p.users <= 0
	if last && h.plugins[p.key] == p {
		delete(h.plugins, p.key)
	}
	h.mu.Unlock()
	if last {
		p.shutdown()
		p.log.Info("plugin stopped: no components left")
	}
}

// Remove takes a provisioned component out of service (for reloads); the
// plugin stops when it serves no other component.
func (h *Host) Remove(c *Component) {
	key := c.Category + "/" + c.Name
	h.mu.Lock()
	if h.components[key] != c {
		h.mu.Unlock()
		return
	}
	delete(h.components, key)
	h.mu.Unlock()
	p := c.plugin
	p.mu.Lock()
	p.comps = slices.DeleteFunc(p.comps, func(x *Component) bool { return x == c })
	p.mu.Unlock()
	c.ready.Store(false)
	h.release(p)
}

// Drain tells the host that shutdown has begun: plugins keep serving the
// in-flight work, but one that exits now is not restarted.
func (h *Host) Drain() { h.draining.Store(true) }

// Lookup returns the provisioned component of a category ("state", …) by
// name.
func (h *Host) Lookup(category, name string) (*Component, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.components[category+"/"+name]
	return c, c != nil
}

// Components lists the provisioned components, by category then name.
func (h *Host) Components() []ComponentStatus {
	h.mu.Lock()
	comps := make([]*Component, 0, len(h.components))
	for _, c := range h.components {
		if c != nil {
			comps = append(comps, c)
		}
	}
	h.mu.Unlock()
	out := make([]ComponentStatus, 0, len(comps))
	for _, c := range comps {
		out = append(out, c.Status())
	}
	slices.SortFunc(out, func(a, b ComponentStatus) int {
		return strings.Compare(a.Category+"/"+a.Name, b.Category+"/"+b.Name)
	})
	return out
}

// Plugins lists the running (or restarting) plugins, by name.
func (h *Host) Plugins() []PluginStatus {
	h.mu.Lock()
	ps := make([]*plugin, 0, len(h.plugins))
	for _, p := range h.plugins {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	out := make([]PluginStatus, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.status())
	}
	slices.SortFunc(out, func(a, b PluginStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Catalog lists the component types available now: one per plugin binary
// in PluginsDir and per category each discovered socket serves.
func (h *Host) Catalog() []string {
	var out []string
	if entries, err := os.ReadDir(h.cfg.PluginsDir); err == nil {
		for _, e := range entries {
			if t, ok := binaryType(e.Name()); ok && isExecutable(filepath.Join(h.cfg.PluginsDir, e.Name())) {
				out = append(out, t)
			}
		}
	}
	out = append(out, h.sockets.types()...)
	slices.Sort(out)
	return slices.Compact(out)
}

// Close stops every plugin (Close, then Kill) and the sockets watch. It
// returns ctx's error if ctx ends first (the plugins are still stopped in
// the background).
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	ps := make([]*plugin, 0, len(h.plugins))
	for _, p := range h.plugins {
		ps = append(ps, p)
	}
	h.plugins = map[string]*plugin{}
	h.components = map[string]*Component{}
	h.mu.Unlock()

	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, p := range ps {
			wg.Add(1)
			go func() { defer wg.Done(); p.shutdown() }()
		}
		wg.Wait()
		h.cancel()
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("closing plugin host: %w", ctx.Err())
	}
}

func isUnimplemented(err error) bool { return status.Code(err) == codes.Unimplemented }
