package e2etest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Output collects a process's stdout and stderr and tells waiters when it
// grows. It is safe for concurrent use.
type Output struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

// NewOutput returns an empty Output.
func NewOutput() *Output { return &Output{changed: make(chan struct{})} }

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.b.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return n, err
}

// Snapshot returns the text so far and a channel closed on the next write.
func (o *Output) Snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String(), o.changed
}

func (o *Output) String() string { s, _ := o.Snapshot(); return s }

// envDrop are variables that would change how a sidecar, plugin or app
// started by a test behaves.
var envDrop = map[string]bool{
	"DAPR_API_TOKEN": true, "APP_API_TOKEN": true, "OUTRIGGER_PLUGIN": true, "OUTRIGGER_HOME": true,
	"DAPR_COMPONENTS_SOCKETS_FOLDER": true, "NAMESPACE": true,
	"DAPR_HTTP_PORT": true, "DAPR_GRPC_PORT": true, "APP_PORT": true,
}

// CleanEnv is the test's environment without the variables that would
// change how a child behaves (API tokens, the go-plugin cookie, Dapr ports,
// OUTRIGGER_HOME) and without drop, followed by extra (KEY=VALUE).
func CleanEnv(drop []string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if envDrop[k] || contains(drop, k) {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ProcOptions tune how StartProc ends a process.
type ProcOptions struct {
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL
	// (0 = 10 s).
	StopTimeout time.Duration
	// BeforeStop, if set, runs before SIGTERM (e.g. closing idle client
	// connections the server would wait for).
	BeforeStop func()
	// Group starts the process in its own process group, and Stop then
	// SIGKILLs whatever is left of the group (e.g. a killed sidecar's plugins).
	Group bool
	// AlwaysLog shows the output at the end of the test even when it passed.
	AlwaysLog bool
	// SlowStop, if set, logs the shutdown output when Stop at the end of the
	// test took longer than this.
	SlowStop time.Duration
}

// Proc is a child process a test started.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	Out     *Output
	opts    ProcOptions
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done
}

// StartProc starts cmd with its output captured in Out. When the test ends
// the process is stopped and, if the test failed, its output is logged.
func StartProc(t testing.TB, name string, cmd *exec.Cmd, o ProcOptions) *Proc {
	t.Helper()
	if o.StopTimeout == 0 {
		o.StopTimeout = 10 * time.Second
	}
	p := &Proc{Name: name, Cmd: cmd, Out: NewOutput(), opts: o, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	if o.Group {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		start := time.Now()
		p.Stop()
		if d := time.Since(start); o.SlowStop > 0 && d > o.SlowStop {
			out := p.Out.String()
			if i := strings.LastIndex(out, "shutting down"); i > 0 {
				out = out[strings.LastIndex(out[:i], "\n")+1:]
			}
			t.Logf("%s took %v to exit after SIGTERM; its shutdown log:\n%s", name, d.Round(time.Millisecond), out)
		}
		if t.Failed() || o.AlwaysLog {
			t.Logf("---- output of %s (pid %d, exit %v, %s) ----\n%s", name, cmd.Process.Pid, p.waitErr, strings.Join(cmd.Args, " "), p.Out)
		}
	})
	return p
}

// Stop sends SIGTERM (after BeforeStop), SIGKILL when the process has not
// left after StopTimeout, and waits for it to be gone.
func (p *Proc) Stop() {
	if !p.Exited() {
		if p.opts.BeforeStop != nil {
			p.opts.BeforeStop()
		}
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(p.opts.StopTimeout):
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
	}
	if p.opts.Group {
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Kill sends SIGKILL to the process only and waits for it to be gone.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error; valid once Exited.
func (p *Proc) Err() error { return p.waitErr }

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// WaitLine waits for an output line starting with prefix and returns the
// rest of it, failing the test when the process exits first or after deadline.
func (p *Proc) WaitLine(t testing.TB, prefix string, deadline time.Duration) string {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		text, changed := p.Out.Snapshot()
		if rest, ok := FindLine(text, prefix); ok {
			return rest
		}
		select {
		case <-changed:
		case <-p.done:
			text, _ = p.Out.Snapshot()
			if rest, ok := FindLine(text, prefix); ok {
				return rest
			}
			t.Fatalf("%s exited (%v) before printing %q", p.Name, p.waitErr, prefix)
		case <-timer.C:
			t.Fatalf("%s did not print %q within %v", p.Name, prefix, deadline)
		}
	}
}

// FindLine finds the first complete line of text that starts with prefix.
func FindLine(text, prefix string) (string, bool) {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, prefix); ok && strings.HasSuffix(rest, "\n") {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}
