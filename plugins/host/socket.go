package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
)

// listServices asks a plugin which gRPC services it serves, through gRPC
// reflection v1alpha (as daprd does). A plugin without reflection yields
// nil: "unknown, assume it serves what it is asked for".
func listServices(ctx context.Context, conn grpc.ClientConnInterface) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, unimplementedIsNil(err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{
		MessageRequest: &rpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}); err != nil {
		return nil, unimplementedIsNil(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, unimplementedIsNil(err)
	}
	_ = stream.CloseSend()
	if e := resp.GetErrorResponse(); e != nil {
		return nil, fmt.Errorf("reflection: %s", e.GetErrorMessage())
	}
	var out []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		out = append(out, s.GetName())
	}
	slices.Sort(out)
	return out, nil
}

func unimplementedIsNil(err error) error {
	if isUnimplemented(err) {
		return nil
	}
	return err
}

// socketInfo is what a scan of one socket found.
type socketInfo struct {
	name     string   // file name minus extension, lower-cased
	services []string // reflected services
}

// socketIndex is the discovered sockets of the sockets directory, kept up
// to date by an fsnotify watch (and rescans while someone waits).
type socketIndex struct {
	dir      string
	services serviceTable
	log      *slog.Logger

	mu      sync.Mutex
	sockets map[string]socketInfo // path → info
	change  chan struct{}         // closed and replaced on every change
}

func newSocketIndex(dir string, services serviceTable, log *slog.Logger) *socketIndex {
	return &socketIndex{dir: dir, services: services, log: log, sockets: map[string]socketInfo{}, change: make(chan struct{})}
}

// changed returns a channel closed at the next change of the index.
func (x *socketIndex) changed() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.change
}

func (x *socketIndex) notify() {
	x.mu.Lock()
	close(x.change)
	x.change = make(chan struct{})
	x.mu.Unlock()
}

func socketName(path string) string {
	base := filepath.Base(path)
	return strings.ToLower(strings.TrimSuffix(base, filepath.Ext(base)))
}

func isSocket(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&fs.ModeSocket != 0
}

// scan dials one socket and records the services it serves; a socket that
// does not answer is dropped from the index.
func (x *socketIndex) scan(ctx context.Context, path string) error {
	if !isSocket(path) {
		x.drop(path)
		return fmt.Errorf("%s is not a socket", path)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	services, err := listServices(ctx, conn)
	if err == nil && services == nil {
		err = errors.New("no gRPC reflection: cannot tell what it serves")
	}
	if err != nil {
		x.drop(path)
		return fmt.Errorf("discovering %s: %w", path, err)
	}
	info := socketInfo{name: socketName(path), services: services}
	x.mu.Lock()
	old, had := x.sockets[path]
	x.sockets[path] = info
	x.mu.Unlock()
	if !had || !slices.Equal(old.services, services) {
		x.log.Info("discovered plugin socket", "socket", path, "types", x.typesOf(info))
		x.notify()
	}
	return nil
}

// scanRetry scans a socket that just appeared: its file exists a moment
// before it accepts connections.
func (x *socketIndex) scanRetry(ctx context.Context, path string) {
	delay := 20 * time.Millisecond
	for i := 0; i < 8; i++ {
		err := x.scan(ctx, path)
		if err == nil || !isSocket(path) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay *= 2
	}
	x.log.Warn("plugin socket does not answer", "socket", path)
}

func (x *socketIndex) drop(path string) {
	x.mu.Lock()
	_, had := x.sockets[path]
	delete(x.sockets, path)
	x.mu.Unlock()
	if had {
		x.log.Info("plugin socket gone", "socket", path)
		x.notify()
	}
}

// scanDir scans every socket of the directory not yet indexed (and drops
// vanished ones).
func (x *socketIndex) scanDir(ctx context.Context) {
	entries, err := os.ReadDir(x.dir)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, e := range entries {
		path := filepath.Join(x.dir, e.Name())
		if e.Type()&fs.ModeSocket == 0 {
			continue
		}
		seen[path] = true
		x.mu.Lock()
		_, known := x.sockets[path]
		x.mu.Unlock()
		if !known {
			if err := x.scan(ctx, path); err != nil {
				x.log.Debug("socket scan failed", "socket", path, "err", err)
			}
		}
	}
	x.mu.Lock()
	var gone []string
	for p := range x.sockets {
		if !seen[p] {
			gone = append(gone, p)
		}
	}
	x.mu.Unlock()
	for _, p := range gone {
		x.drop(p)
	}
}

// find returns the socket serving category under the name impl.
func (x *socketIndex) find(category, impl string) (string, bool) {
	impl = strings.ToLower(impl)
	x.mu.Lock()
	defer x.mu.Unlock()
	for path, info := range x.sockets {
		if info.name == impl && slices.Contains(x.services.categories(info.services), category) {
			return path, true
		}
	}
	return "", false
}

func (x *socketIndex) typesOf(info socketInfo) []string {
	var out []string
	for _, c := range x.services.categories(info.services) {
		out = append(out, c+"."+info.name)
	}
	return out
}

func (x *socketIndex) types() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for _, info := range x.sockets {
		out = append(out, x.typesOf(info)...)
	}
	return out
}

// watch keeps the index current until ctx is done. It returns at once (with
// a warning) when the directory cannot be watched; waiters then rescan.
func (x *socketIndex) watch(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		x.log.Warn("cannot watch the sockets folder; sockets appearing later are found by rescans only", "err", err)
		return
	}
	defer w.Close()
	if err := w.Add(x.dir); err != nil {
		x.log.Warn("cannot watch the sockets folder; sockets appearing later are found by rescans only",
			"dir", x.dir, "err", err)
		return
	}
	x.scanDir(ctx) // sockets created between the first scan and Add
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-w.Errors:
			x.log.Warn("sockets folder watch error", "err", err)
		case ev := <-w.Events:
			switch {
			case ev.Has(fsnotify.Create):
				wg.Add(1)
				go func() { defer wg.Done(); x.scanRetry(ctx, ev.Name) }()
			case ev.Has(fsnotify.Remove), ev.Has(fsnotify.Rename):
				x.drop(ev.Name)
			}
		}
	}
}

// socketLauncher attaches to a plugin someone else started.
type socketLauncher struct {
	path string
}

func (l *socketLauncher) start(ctx context.Context) (*run, error) {
	if !isSocket(l.path) {
		return nil, fmt.Errorf("socket %s does not exist", l.path)
	}
	var pid peerPID
	conn, err := grpc.NewClient("unix://"+l.path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithIdleTimeout(0),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", l.path)
			if err == nil {
				pid.record(c)
			}
			return c, err
		}))
	if err != nil {
		return nil, fmt.Errorf("dialling %s: %w", l.path, err)
	}
	if err := waitReady(ctx, conn, true); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connecting to %s: %w", l.path, err)
	}
	return &run{
		conn:   conn,
		pid:    pid.get(),
		exited: func() bool { return false },
		stop:   func() { conn.Close() },
	}, nil
}

// waitReady connects conn and waits until it is READY or ctx is done (or,
// with failFast, the first connection attempt failed: the supervisor, woken
// by the socket watch, retries sooner than gRPC's reconnect backoff).
func waitReady(ctx context.Context, conn *grpc.ClientConn, failFast bool) error {
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.Shutdown:
			return errors.New("connection shut down")
		case connectivity.TransientFailure:
			if failFast {
				return errors.New("connection failed")
			}
		case connectivity.Idle:
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("%w (connection %s)", ctx.Err(), s)
		}
	}
}
