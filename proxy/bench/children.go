package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Hidden subcommands: the bench re-executes itself in these roles so that the baseline proxies and
// the echo apps are separate processes, measured like the sidecars.
const (
	cmdEcho  = "__echo"
	cmdProxy = "__proxy"
	cmdFloor = "__floor" // no-op Dapr HTTP + gRPC server: the ceiling rows (floor.go)
)

// isChildRole reports whether arg names one of the hidden child roles.
func isChildRole(arg string) bool {
	return arg == cmdEcho || arg == cmdProxy || arg == cmdFloor
}

// listenLinePrefix starts the first stdout line of a child, followed by its listening address
// (the floor child: "http=<addr> grpc=<addr>", see parseFloorAddrs).
const listenLinePrefix = "LISTENING "

// runChild serves one child role until SIGTERM/SIGINT. args excludes the subcommand itself.
func runChild(role string, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	target := fs.String("target", "", "upstream base URL (proxy role)")
	var floor floorConfig
	fs.StringVar(&floor.forward, "forward", "", "floor role: answer every call by one gRPC call to the floor on this unix socket")
	fs.StringVar(&floor.listenUnix, "listen-unix", "", "floor role: serve gRPC only, on this unix socket")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if role != cmdFloor && floor != (floorConfig{}) {
		return fmt.Errorf("%s: -forward and -listen-unix are for %s only", role, cmdFloor)
	}
	var h http.Handler
	switch role {
	case cmdFloor:
		if fs.NArg() > 0 || *target != "" {
			return fmt.Errorf("%s takes no arguments (only -forward, -listen-unix)", role)
		}
		return runFloor(log, floor)
	case cmdEcho:
		h = echoHandler()
	case cmdProxy:
		u, err := url.Parse(*target)
		if err != nil || u.Hostname() != "127.0.0.1" {
			return fmt.Errorf("proxy: -target %q must be an http://127.0.0.1:port URL", *target)
		}
		h = reverseProxy(u)
	default:
		return fmt.Errorf("unknown child role %q", role)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("%s: listen: %w", role, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck // best effort on the way out
	}()
	if _, err := fmt.Fprintf(os.Stdout, "%s%s\n", listenLinePrefix, ln.Addr()); err != nil {
		return fmt.Errorf("%s: announce address: %w", role, err)
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", role, err)
	}
	log.Debug("child stopped", "role", role)
	return nil
}

// echoHandler answers every request with its own body and content type (the app under test).
// A path ending in /flaky fails the first request for each ?token= with 503 and echoes the
// retries: the resiliency suite's probe of whether retries are applied.
func echoHandler() http.Handler {
	pool := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	var failed sync.Map // tokens already failed once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/flaky") {
			if _, seen := failed.LoadOrStore(r.URL.Query().Get("token"), true); !seen {
				http.Error(w, "flaky: first attempt fails", http.StatusServiceUnavailable)
				return
			}
		}
		buf := pool.Get().(*bytes.Buffer)
		defer pool.Put(buf)
		buf.Reset()
		if _, err := buf.ReadFrom(r.Body); err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Write(buf.Bytes()) //nolint:errcheck // client gone; nothing to do
	})
}

// reverseProxy is the minimal baseline: the standard library's ReverseProxy with one change from
// the defaults, a connection pool large enough for the bench's concurrency (the default keeps only
// 2 idle connections per host, which would make the baseline churn connections).
func reverseProxy(target *url.URL) http.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 1024
	return &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: tr,
	}
}

// proc is a child process the bench started and must stop.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *tailBuffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// startProc starts cmd with output captured (last bytes kept for error messages), and with
// SIGKILL delivered to it should the bench die first.
func startProc(name string, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, cmd: cmd, logs: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.logs
	}
	cmd.Stderr = p.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// exitErr reports whether the process has exited and, if so, how.
func (p *proc) exitErr() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, fmt.Errorf("%s exited", p.name)
		}
		return true, fmt.Errorf("%s exited: %w", p.name, p.err)
	default:
		return false, nil
	}
}

// Stop asks the process to exit (SIGTERM) and kills it after grace.
func (p *proc) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // may have just exited
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.cmd.Process.Kill() //nolint:errcheck // may have just exited
		<-p.done
	}
}

// startChild re-executes the bench binary in a child role and waits for its address.
func startChild(ctx context.Context, self, name, role string, args ...string) (*proc, string, error) {
	cmd := exec.Command(self, append([]string{role}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", fmt.Errorf("%s: stdout pipe: %w", name, err)
	}
	p, err := startProc(name, cmd)
	if err != nil {
		return nil, "", err
	}
	addr := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		addr <- strings.TrimSpace(line)
		io.Copy(p.logs, r) //nolint:errcheck // drains until the child exits
	}()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case line := <-addr:
		a, ok := strings.CutPrefix(line, listenLinePrefix)
		if !ok {
			p.Stop(time.Second)
			return nil, "", fmt.Errorf("%s: unexpected first line %q; output: %s", name, line, p.logs)
		}
		return p, a, nil
	case <-t.C:
		p.Stop(time.Second)
		return nil, "", fmt.Errorf("%s: no address within 10s; output: %s", name, p.logs)
	case <-ctx.Done():
		p.Stop(time.Second)
		return nil, "", ctx.Err()
	}
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "(no output)"
	}
	return "\n" + s
}
