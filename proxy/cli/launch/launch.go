package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Cmd is one process to start.
type Cmd struct {
	Path string
	Args []string // without the program name
	Env  []string // the complete environment; nil inherits ours
	Dir  string
	// Stdout and Stderr receive the process's output; a *LineWriter is
	// flushed when the process ends. Nil discards.
	Stdout, Stderr io.Writer
}

// Pair is an app and its sidecar.
type Pair struct {
	Name    string // the app id, used in messages
	Sidecar Cmd
	App     *Cmd // nil runs the sidecar alone until it exits or ctx ends
	// Ready, if set, must succeed after the sidecar started and before the
	// app starts. Its context is cancelled if the sidecar exits.
	Ready func(ctx context.Context) error
	// OnStarted, if set, runs in its own goroutine once both processes run
	// (appPID is 0 without an app). Its context ends with the pair.
	OnStarted func(ctx context.Context, sidecarPID, appPID int)
}

// Supervisor starts and stops Pairs.
type Supervisor struct {
	Log *slog.Logger
	// Grace is how long a process gets between SIGTERM and SIGKILL
	// (default 10s).
	Grace time.Duration
}

// Result says how one pair ended.
type Result struct {
	Name string
	// Code is the app's exit code (the sidecar's without an app); 0 when
	// the app was stopped because ctx ended and it died of that signal.
	Code int
	Err  error // the pair could not run as asked (start failure, sidecar died)
}

// Run starts every pair and returns when all have ended. The returned code
// is the first non-zero Code among the pairs, or 1 if a pair failed, else 0.
func (s *Supervisor) Run(ctx context.Context, pairs []Pair) (int, []Result) {
	results := make([]Result, len(pairs))
	var wg sync.WaitGroup
	for i := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.runPair(ctx, pairs[i])
		}()
	}
	wg.Wait()
	code := 0
	for _, r := range results {
		switch {
		case code != 0:
		case r.Code != 0:
			code = r.Code
		case r.Err != nil:
			code = 1
		}
	}
	return code, results
}

func (s *Supervisor) grace() time.Duration {
	if s.Grace > 0 {
		return s.Grace
	}
	return 10 * time.Second
}

func (s *Supervisor) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Supervisor) runPair(ctx context.Context, p Pair) Result {
	res := Result{Name: p.Name}
	sc, err := s.start(p.Sidecar)
	if err != nil {
		res.Code, res.Err = 1, fmt.Errorf("start sidecar for %s: %w", p.Name, err)
		return res
	}
	defer s.stop(sc)

	if p.Ready != nil {
		rctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-sc.done:
				cancel()
			case <-rctx.Done():
			}
		}()
		err := p.Ready(rctx)
		cancel()
		switch {
		case err == nil:
		case sc.exited():
			res.Code, res.Err = 1, fmt.Errorf("sidecar for %s exited before it was ready: %s", p.Name, describeExit(sc.err))
			return res
		case ctx.Err() != nil:
			return res // stopped before the app started
		default:
			res.Code, res.Err = 1, fmt.Errorf("sidecar for %s: %w", p.Name, err)
			return res
		}
	}

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if p.App == nil {
		if p.OnStarted != nil {
			go p.OnStarted(pctx, sc.pid(), 0)
		}
		select {
		case <-sc.done:
			res.Code = exitCode(sc.err, false)
			if res.Code != 0 {
				res.Err = fmt.Errorf("sidecar for %s exited: %s", p.Name, describeExit(sc.err))
			}
		case <-ctx.Done():
			s.stop(sc)
			res.Code = exitCode(sc.err, true)
		}
		return res
	}

	app, err := s.start(*p.App)
	if err != nil {
		res.Code, res.Err = 1, fmt.Errorf("start app %s: %w", p.Name, err)
		return res
	}
	if p.OnStarted != nil {
		go p.OnStarted(pctx, sc.pid(), app.pid())
	}
	select {
	case <-app.done:
		res.Code = exitCode(app.err, false)
		s.log().Info("app exited; stopping its sidecar", "app", p.Name, "status", describeExit(app.err))
	case <-sc.done:
		s.log().Error("sidecar exited; stopping its app", "app", p.Name, "status", describeExit(sc.err))
		s.stop(app)
		res.Code, res.Err = 1, fmt.Errorf("sidecar for %s exited: %s", p.Name, describeExit(sc.err))
	case <-ctx.Done():
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); s.stop(sc) }()
		s.stop(app)
		wg.Wait()
		res.Code = exitCode(app.err, true)
	}
	return res
}

// proc is a started process and its outcome.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (s *Supervisor) start(c Cmd) (*proc, error) {
	if c.Path == "" {
		return nil, errors.New("no command given")
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = c.Env
	cmd.Dir = c.Dir
	cmd.Stdout = orDiscard(c.Stdout)
	cmd.Stderr = orDiscard(c.Stderr)
	cmd.SysProcAttr = sysProcAttr()
	// Grandchildren that keep the output pipes open must not hang Wait.
	cmd.WaitDelay = s.grace()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		flush(c.Stdout)
		flush(c.Stderr)
		close(p.done)
	}()
	return p, nil
}

// stop ends p: SIGTERM to its process group, SIGKILL after the grace
// period. It returns once the process has been reaped.
func (s *Supervisor) stop(p *proc) {
	if p.exited() {
		return
	}
	signalGroup(p.pid(), syscall.SIGTERM)
	t := time.NewTimer(s.grace())
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	}
	s.log().Warn("process did not stop in time; killing it", "pid", p.pid(), "grace", s.grace())
	signalGroup(p.pid(), syscall.SIGKILL)
	<-p.done
}

func signalGroup(pid int, sig syscall.Signal) {
	// Negative pid: the whole process group (children run with Setpgid).
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func flush(w io.Writer) {
	if f, ok := w.(interface{ Flush() }); ok {
		f.Flush()
	}
}

// exitCode turns a Wait error into an exit code. A process that died of
// SIGTERM/SIGKILL we sent (stopped) counts as 0; other deaths by signal as
// 128+signal, as shells report them.
func exitCode(err error, stopped bool) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		if stopped && (ws.Signal() == syscall.SIGTERM || ws.Signal() == syscall.SIGKILL) {
			return 0
		}
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// HTTPReady returns a Ready check that polls url until it answers 2xx,
// failing after timeout.
func HTTPReady(url string, timeout time.Duration) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		client := &http.Client{Timeout: time.Second}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		var last error
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("readiness check %s: %w", url, err)
			}
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					return nil
				}
				last = fmt.Errorf("status %s", resp.Status)
			} else if ctx.Err() == nil || last == nil {
				last = err
			}
			select {
			case <-ctx.Done():
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return fmt.Errorf("not ready after %s at %s: %v", timeout, url, last)
				}
				return ctx.Err()
			case <-tick.C:
			}
		}
	}
}

// Environ merges extra KEY=VALUE settings over base (later wins), keeping
// the order of base.
func Environ(base []string, extra ...string) []string {
	out := make([]string, 0, len(base)+len(extra))
	idx := map[string]int{}
	for _, kv := range append(append([]string(nil), base...), extra...) {
		k := kv
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				k = kv[:i]
				break
			}
		}
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}
