package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The floor child (`__floor`) answers the Dapr state and lock calls the suites make, over HTTP
// (a plain net/http server) and gRPC (a plain grpc-go server), with no work behind them. Rows
// against it measure the ceiling on this machine: what any Go server could sustain with the same
// clients, so the sidecar's figures can be read against it rather than against direct Redis alone.
// With -forward, a floor child is instead the thinnest Go sidecar: every call it answers costs one
// gRPC call to another floor child (-listen-unix, a no-op plugin on a unix socket).

// floorETag is the etag the floor returns for every get.
const floorETag = "1"

// letters is n bytes of a, b, c, … z, a, …: the bench's request bodies and state values.
func letters(n int) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

// floorConfig is how a floor child serves (its flags, see runChild).
type floorConfig struct {
	// forward, when set, is the unix socket of another floor child: every HTTP and gRPC call is
	// answered by making one gRPC call there (the thinnest Go sidecar) instead of at once.
	forward string
	// listenUnix, when set, serves gRPC only, on this unix socket instead of loopback TCP (the
	// no-op plugin the forwarding floor calls).
	listenUnix string
}

// runFloor serves the floor until SIGTERM/SIGINT and announces its addresses on one line:
// "LISTENING http=<addr> grpc=<addr>" (see parseFloorAddrs), or with -listen-unix
// "LISTENING grpc=unix://<abs path>" (see floorUnixLine).
func runFloor(log *slog.Logger, cfg floorConfig) error {
	var dapr runtimev1.DaprServer = &floorDapr{value: letters(stateValueSize)}
	handler := floorHandler()
	if cfg.forward != "" {
		if _, err := os.Stat(cfg.forward); err != nil {
			return fmt.Errorf("%s: -forward: %w", cmdFloor, err)
		}
		conn, err := dialUnix(cfg.forward)
		if err != nil {
			return fmt.Errorf("%s: %w", cmdFloor, err)
		}
		defer conn.Close()
		up := runtimev1.NewDaprClient(conn)
		dapr, handler = &fwdDapr{up: up}, fwdHandler(up)
	}

	var hln, gln net.Listener
	var announce string
	if cfg.listenUnix != "" {
		abs, err := filepath.Abs(cfg.listenUnix)
		if err != nil {
			return fmt.Errorf("%s: -listen-unix %q: %w", cmdFloor, cfg.listenUnix, err)
		}
		if gln, err = net.Listen("unix", abs); err != nil {
			return fmt.Errorf("%s: listen grpc: %w", cmdFloor, err)
		}
		announce = floorUnixLine(abs)
	} else {
		var err error
		if hln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("%s: listen http: %w", cmdFloor, err)
		}
		if gln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			hln.Close()
			return fmt.Errorf("%s: listen grpc: %w", cmdFloor, err)
		}
		announce = fmt.Sprintf("http=%s grpc=%s", hln.Addr(), gln.Addr())
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	gs := grpc.NewServer()
	runtimev1.RegisterDaprServer(gs, dapr)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 2)
	if hln != nil {
		go func() {
			if err := hs.Serve(hln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: serve http: %w", cmdFloor, err)
				return
			}
			errc <- nil
		}()
	}
	go func() {
		if err := gs.Serve(gln); err != nil {
			errc <- fmt.Errorf("%s: serve grpc: %w", cmdFloor, err)
			return
		}
		errc <- nil
	}()
	var serveErr error
	if _, err := fmt.Fprintf(os.Stdout, "%s%s\n", listenLinePrefix, announce); err != nil {
		serveErr = fmt.Errorf("%s: announce addresses: %w", cmdFloor, err)
	} else {
		select {
		case <-ctx.Done():
		case serveErr = <-errc: // a server failed: stop the other one too
		}
	}
	if hln != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx) //nolint:errcheck // best effort on the way out
	}
	gs.Stop() // closes gln, which removes a unix socket file
	log.Debug("child stopped", "role", cmdFloor)
	return serveErr
}

// unixTarget is the gRPC target of the unix socket at the absolute path abs.
func unixTarget(abs string) string { return "unix://" + abs }

// floorUnixLine is what a floor child with -listen-unix announces (after listenLinePrefix) for
// the socket at the absolute path abs.
func floorUnixLine(abs string) string { return "grpc=" + unixTarget(abs) }

// dialUnix opens the one gRPC connection a forwarding floor (or a test) makes to the floor
// serving on the unix socket at path, as a sidecar holds one connection per plugin.
func dialUnix(path string) (*grpc.ClientConn, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("socket %q: %w", path, err)
	}
	conn, err := grpc.NewClient(unixTarget(abs), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial the upstream floor on %s: %w", abs, err)
	}
	return conn, nil
}

// parseFloorAddrs splits the floor's announced line (after listenLinePrefix),
// "http=<addr> grpc=<addr>", into its two addresses.
func parseFloorAddrs(s string) (httpAddr, grpcAddr string, err error) {
	for _, f := range strings.Fields(s) {
		if a, ok := strings.CutPrefix(f, "http="); ok {
			httpAddr = a
		} else if a, ok := strings.CutPrefix(f, "grpc="); ok {
			grpcAddr = a
		}
	}
	if httpAddr == "" || grpcAddr == "" {
		return "", "", fmt.Errorf("floor announced %q; want \"http=<addr> grpc=<addr>\"", s)
	}
	return httpAddr, grpcAddr, nil
}

// floorHandler answers the Dapr HTTP state and lock routes the suites call, doing nothing.
func floorHandler() http.Handler {
	value := letters(stateValueSize)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1.0/state/{store}/{key}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", floorETag)
		w.Write(value) //nolint:errcheck // client gone; nothing to do
	})
	mux.HandleFunc("POST /v1.0/state/{store}", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // the body is discarded either way
		w.WriteHeader(http.StatusNoContent)
	})
	lockAnswer := func(answer string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) //nolint:errcheck // the body is discarded either way
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, answer) //nolint:errcheck // client gone; nothing to do
		}
	}
	mux.HandleFunc("POST /v1.0-alpha1/lock/{store}", lockAnswer(`{"success":true}`))
	mux.HandleFunc("POST /v1.0-alpha1/unlock/{store}", lockAnswer(`{"status":0}`))
	return mux
}

// floorDapr is the gRPC side of the floor: the four Dapr API methods the suites call, doing
// nothing; every other method is unimplemented.
type floorDapr struct {
	runtimev1.UnimplementedDaprServer
	value []byte // returned by every GetState; never modified
}

func (f *floorDapr) GetState(context.Context, *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error) {
	return &runtimev1.GetStateResponse{Data: f.value, Etag: floorETag}, nil
}

func (f *floorDapr) SaveState(context.Context, *runtimev1.SaveStateRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (f *floorDapr) TryLockAlpha1(context.Context, *runtimev1.TryLockRequest) (*runtimev1.TryLockResponse, error) {
	return &runtimev1.TryLockResponse{Success: true}, nil
}

func (f *floorDapr) UnlockAlpha1(context.Context, *runtimev1.UnlockRequest) (*runtimev1.UnlockResponse, error) {
	return &runtimev1.UnlockResponse{Status: runtimev1.UnlockResponse_SUCCESS}, nil
}

// fwdHandler is the forwarding floor's HTTP side: each route decodes what a sidecar must (path
// values, the JSON body) and makes one gRPC call to the upstream floor, then writes the answer
// in the shape floorHandler gives. An upstream error is a 500.
func fwdHandler(up runtimev1.DaprClient) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1.0/state/{store}/{key}", func(w http.ResponseWriter, r *http.Request) {
		res, err := up.GetState(r.Context(), &runtimev1.GetStateRequest{StoreName: r.PathValue("store"), Key: r.PathValue("key")})
		if err != nil {
			fwdError(w, "get state", err)
			return
		}
		if len(res.GetData()) == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if res.GetEtag() != "" {
			w.Header().Set("ETag", res.GetEtag())
		}
		w.Write(res.GetData()) //nolint:errcheck // client gone; nothing to do
	})
	mux.HandleFunc("POST /v1.0/state/{store}", func(w http.ResponseWriter, r *http.Request) {
		var items []struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.NewDecoder(r.Body).Decode(&items); err != nil {
			http.Error(w, "decode state items: "+err.Error(), http.StatusBadRequest)
			return
		}
		states := make([]*commonv1.StateItem, len(items))
		for i, it := range items {
			states[i] = &commonv1.StateItem{Key: it.Key, Value: it.Value}
		}
		if _, err := up.SaveState(r.Context(), &runtimev1.SaveStateRequest{StoreName: r.PathValue("store"), States: states}); err != nil {
			fwdError(w, "save state", err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1.0-alpha1/lock/{store}", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ResourceID string `json:"resourceId"`
			LockOwner  string `json:"lockOwner"`
			Expiry     int32  `json:"expiryInSeconds"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "decode lock request: "+err.Error(), http.StatusBadRequest)
			return
		}
		res, err := up.TryLockAlpha1(r.Context(), &runtimev1.TryLockRequest{StoreName: r.PathValue("store"),
			ResourceId: in.ResourceID, LockOwner: in.LockOwner, ExpiryInSeconds: in.Expiry})
		if err != nil {
			fwdError(w, "lock", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"success":`+strconv.FormatBool(res.GetSuccess())+`}`) //nolint:errcheck // client gone
	})
	mux.HandleFunc("POST /v1.0-alpha1/unlock/{store}", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ResourceID string `json:"resourceId"`
			LockOwner  string `json:"lockOwner"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "decode unlock request: "+err.Error(), http.StatusBadRequest)
			return
		}
		res, err := up.UnlockAlpha1(r.Context(), &runtimev1.UnlockRequest{StoreName: r.PathValue("store"),
			ResourceId: in.ResourceID, LockOwner: in.LockOwner})
		if err != nil {
			fwdError(w, "unlock", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":`+strconv.Itoa(int(res.GetStatus()))+`}`) //nolint:errcheck // client gone
	})
	return mux
}

// fwdError answers a failed upstream call with a 500 naming it.
func fwdError(w http.ResponseWriter, op string, err error) {
	http.Error(w, "upstream "+op+": "+err.Error(), http.StatusInternalServerError)
}

// fwdDapr is the forwarding floor's gRPC side: each method makes the same-named call upstream
// and returns its answer, or its error (whose gRPC status the client then sees).
type fwdDapr struct {
	runtimev1.UnimplementedDaprServer
	up runtimev1.DaprClient
}

func (f *fwdDapr) GetState(ctx context.Context, r *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error) {
	return f.up.GetState(ctx, r)
}

func (f *fwdDapr) SaveState(ctx context.Context, r *runtimev1.SaveStateRequest) (*emptypb.Empty, error) {
	return f.up.SaveState(ctx, r)
}

func (f *fwdDapr) TryLockAlpha1(ctx context.Context, r *runtimev1.TryLockRequest) (*runtimev1.TryLockResponse, error) {
	return f.up.TryLockAlpha1(ctx, r)
}

func (f *fwdDapr) UnlockAlpha1(ctx context.Context, r *runtimev1.UnlockRequest) (*runtimev1.UnlockResponse, error) {
	return f.up.UnlockAlpha1(ctx, r)
}

// floorServer is a running floor child, as the suites use it.
type floorServer struct {
	proc               *proc
	httpAddr, grpcAddr string
}

// startFloor starts the floor child (with args, see floorConfig); it is tracked, so it stops
// with the suite.
func startFloor(ctx context.Context, e *env, name string, args ...string) (*floorServer, error) {
	p, line, err := startChild(ctx, e.self, name, cmdFloor, args...)
	if err != nil {
		return nil, err
	}
	e.track(p)
	h, g, err := parseFloorAddrs(line)
	if err != nil {
		p.Stop(time.Second)
		return nil, err
	}
	return &floorServer{proc: p, httpAddr: h, grpcAddr: g}, nil
}

// fwdFloor is the thinnest Go sidecar as the suites use it: a forwarding floor child (its
// floorServer, which the clients call) in front of a no-op plugin, an upstream floor child
// serving gRPC on a unix socket.
type fwdFloor struct {
	*floorServer
	upstream *proc
}

// startFwdFloor starts the upstream floor on a socket in a fresh folder of the run's temporary
// directory, then the forwarder; both are tracked, so they stop with the suite.
func startFwdFloor(ctx context.Context, e *env) (*fwdFloor, error) {
	dir, err := os.MkdirTemp(e.l.dir, "fwd-")
	if err != nil {
		return nil, fmt.Errorf("forwarding floor: sockets folder: %w", err)
	}
	sock := filepath.Join(dir, "plugin.sock")
	up, line, err := startChild(ctx, e.self, "no-op plugin (floor on a unix socket)", cmdFloor, "-listen-unix", sock)
	if err != nil {
		return nil, err
	}
	e.track(up)
	if want := floorUnixLine(sock); line != want {
		up.Stop(time.Second)
		return nil, fmt.Errorf("no-op plugin announced %q; want %q", line, want)
	}
	fwd, err := startFloor(ctx, e, "thinnest Go sidecar (forwarding floor)", "-forward", sock)
	if err != nil {
		return nil, err
	}
	return &fwdFloor{floorServer: fwd, upstream: up}, nil
}

// procs are the processes whose CPU a forwarding floor row counts: forwarder and upstream.
func (f *fwdFloor) procs() []*proc { return []*proc{f.proc, f.upstream} }

func (f *floorServer) url(path string) string { return "http://" + f.httpAddr + path }

// dial opens a gRPC connection to the floor exactly as dial does to a sidecar.
func (f *floorServer) dial() (*grpc.ClientConn, runtimev1.DaprClient, error) {
	conn, err := grpc.NewClient(f.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dial the floor's gRPC API: %w", err)
	}
	return conn, runtimev1.NewDaprClient(conn), nil
}

// ceilings are the two ceiling servers a suite measures next to the sidecar, each with a gRPC
// client dialled as the sidecar's is: the no-op floor and the thinnest Go sidecar.
type ceilings struct {
	floor              *floorServer
	fwd                *fwdFloor
	floorConn, fwdConn *grpc.ClientConn
	floorDapr, fwdDapr runtimev1.DaprClient
}

// startCeilings starts both ceiling servers (tracked, so they stop with the suite) and dials
// them; close closes the clients.
func startCeilings(ctx context.Context, e *env) (*ceilings, error) {
	c := &ceilings{}
	var err error
	if c.floor, err = startFloor(ctx, e, "no-op floor server"); err != nil {
		return nil, err
	}
	if c.fwd, err = startFwdFloor(ctx, e); err != nil {
		return nil, err
	}
	if c.floorConn, c.floorDapr, err = c.floor.dial(); err != nil {
		return nil, err
	}
	if c.fwdConn, c.fwdDapr, err = c.fwd.dial(); err != nil {
		c.floorConn.Close()
		return nil, err
	}
	return c, nil
}

func (c *ceilings) close() {
	c.floorConn.Close()
	c.fwdConn.Close()
}

// Servers named by ceiling lines (ceilingGoal's server).
const (
	ceilingNoop = "no-op Go server"
	ceilingFwd  = "thinnest Go sidecar (HTTP/gRPC → one gRPC call to a no-op plugin process)"
)

// ceilingGoal is an informational line among a suite's goals (no verdict, so never missed): the
// share of direct throughput server (a floor row) keeps on this machine, next to the sidecar's.
func ceilingGoal(name, server string, floor, sidecar, direct *opRow) goal {
	g := goal{Name: name, Target: "(ceiling, no goal)"}
	if floor == nil || sidecar == nil || direct == nil || floor.RPS <= 0 || direct.RPS <= 0 {
		g.Value = "not measured"
		return g
	}
	g.Value = fmt.Sprintf("%s %.2f× of direct, sidecar %.2f× (%.0f%% of it)",
		server, floor.RPS/direct.RPS, sidecar.RPS/direct.RPS, 100*sidecar.RPS/floor.RPS)
	return g
}
