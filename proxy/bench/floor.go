package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The floor child (`__floor`) answers the Dapr state and lock calls the suites make, over HTTP
// (a plain net/http server) and gRPC (a plain grpc-go server), with no work behind them. Rows
// against it measure the ceiling on this machine: what any Go server could sustain with the same
// clients, so the sidecar's figures can be read against it rather than against direct Redis alone.

// floorETag is the etag the floor returns for every get.
const floorETag = "1"

// floorValue is the fixed state value the floor returns for every get (stateValueSize bytes).
func floorValue() []byte {
	v := make([]byte, stateValueSize)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

// runFloor serves the floor until SIGTERM/SIGINT and announces both addresses on one line:
// "LISTENING http=<addr> grpc=<addr>" (see parseFloorAddrs).
func runFloor(log *slog.Logger) error {
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("%s: listen http: %w", cmdFloor, err)
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		hln.Close()
		return fmt.Errorf("%s: listen grpc: %w", cmdFloor, err)
	}
	hs := &http.Server{Handler: floorHandler(), ReadHeaderTimeout: 10 * time.Second}
	gs := grpc.NewServer()
	runtimev1.RegisterDaprServer(gs, &floorDapr{value: floorValue()})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 2)
	go func() {
		if err := hs.Serve(hln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("%s: serve http: %w", cmdFloor, err)
			return
		}
		errc <- nil
	}()
	go func() {
		if err := gs.Serve(gln); err != nil {
			errc <- fmt.Errorf("%s: serve grpc: %w", cmdFloor, err)
			return
		}
		errc <- nil
	}()
	var serveErr error
	if _, err := fmt.Fprintf(os.Stdout, "%shttp=%s grpc=%s\n", listenLinePrefix, hln.Addr(), gln.Addr()); err != nil {
		serveErr = fmt.Errorf("%s: announce addresses: %w", cmdFloor, err)
	} else {
		select {
		case <-ctx.Done():
		case serveErr = <-errc: // a server failed: stop the other one too
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs.Shutdown(sctx) //nolint:errcheck // best effort on the way out
	gs.Stop()
	log.Debug("child stopped", "role", cmdFloor)
	return serveErr
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
	value := floorValue()
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

// floorServer is a running floor child, as the suites use it.
type floorServer struct {
	proc               *proc
	httpAddr, grpcAddr string
}

// startFloor starts the floor child; it is tracked, so it stops with the suite.
func startFloor(ctx context.Context, e *env) (*floorServer, error) {
	p, line, err := startChild(ctx, e.self, "no-op floor server", cmdFloor)
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

func (f *floorServer) url(path string) string { return "http://" + f.httpAddr + path }

// dial opens a gRPC connection to the floor exactly as dial does to a sidecar.
func (f *floorServer) dial() (*grpc.ClientConn, runtimev1.DaprClient, error) {
	conn, err := grpc.NewClient(f.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dial the floor's gRPC API: %w", err)
	}
	return conn, runtimev1.NewDaprClient(conn), nil
}

// ceilingGoal is an informational line among a suite's goals (no verdict, so never missed): the
// share of direct throughput a no-op Go server keeps on this machine, next to the sidecar's.
func ceilingGoal(name string, floor, sidecar, direct *opRow) goal {
	g := goal{Name: name, Target: "(ceiling, no goal)"}
	if floor == nil || sidecar == nil || direct == nil || floor.RPS <= 0 || direct.RPS <= 0 {
		g.Value = "not measured"
		return g
	}
	g.Value = fmt.Sprintf("no-op Go server %.2f× of direct, sidecar %.2f× (%.0f%% of the ceiling)",
		floor.RPS/direct.RPS, sidecar.RPS/direct.RPS, 100*sidecar.RPS/floor.RPS)
	return g
}
