package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger/outrigger/proxy/bench/procstat"
)

// sidecar is a running `outrigger sidecar` started by the bench.
type sidecar struct {
	*proc
	appID      string
	httpPort   int
	grpcPort   int
	gossipPort int
	started    time.Time // just before exec
}

// sidecarSpec is what differs between the sidecars the bench starts.
type sidecarSpec struct {
	appID      string
	appPort    int    // 0: no app
	gossipJoin string // host:port of a sidecar to join; "" for the first
	resources  string // resources directory; "" for the launcher's empty one
	config     string // Dapr Configuration file; "" for none
}

// launcher starts sidecars from one binary into one private environment.
type launcher struct {
	bin       string // absolute path of bin/outrigger
	dir       string // the bench's private temp directory (removed at exit)
	home      string // OUTRIGGER_HOME: keeps bench sidecars out of the user's `outrigger list`
	resources string // an empty resources directory: no components
	sockets   string // a private, empty plugin sockets directory
	plugins   string // plugin binaries: plugins/ beside bin
	ports     *portPicker
}

// hasPlugin reports whether the plugin binary for a component type ("state.redis") is present.
func (l *launcher) hasPlugin(componentType string) bool {
	kind, name, ok := strings.Cut(componentType, ".")
	if !ok {
		return false
	}
	fi, err := os.Stat(filepath.Join(l.plugins, kind+"-"+name))
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func (l *launcher) start(spec sidecarSpec) (*sidecar, error) {
	ports, err := l.ports.pick(4)
	if err != nil {
		return nil, err
	}
	s := &sidecar{appID: spec.appID, httpPort: ports[0], grpcPort: ports[1], gossipPort: ports[3]}
	resources := spec.resources
	if resources == "" {
		resources = l.resources
	}
	args := []string{"sidecar",
		"--app-id", spec.appID,
		"--app-port", strconv.Itoa(spec.appPort),
		"--dapr-http-port", strconv.Itoa(ports[0]),
		"--dapr-grpc-port", strconv.Itoa(ports[1]),
		"--dapr-internal-grpc-port", "0",
		"--metrics-port", strconv.Itoa(ports[2]),
		"--gossip-port", strconv.Itoa(ports[3]),
		"--admin-port", "0",
		"--resources-path", resources,
		"--sockets-path", l.sockets,
		"--log-level", "warn",
	}
	if spec.config != "" {
		args = append(args, "--config", spec.config)
	}
	if spec.gossipJoin != "" {
		args = append(args, "--gossip-join", spec.gossipJoin)
	}
	cmd := exec.Command(l.bin, args...)
	cmd.Env = append(os.Environ(), "OUTRIGGER_HOME="+l.home)
	s.started = time.Now()
	p, err := startProc("sidecar "+spec.appID, cmd)
	if err != nil {
		return nil, err
	}
	s.proc = p
	return s, nil
}

func (s *sidecar) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.httpPort, path)
}

func (s *sidecar) grpcAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.grpcPort))
}

func (s *sidecar) gossipAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.gossipPort))
}

// waitStatus polls GET url every `every` until it answers want, the deadline passes, or p exits.
// It returns when the wanted answer arrived.
func waitStatus(ctx context.Context, p *proc, url string, want int, every, deadline time.Duration) (time.Time, error) {
	client := &http.Client{Timeout: 250 * time.Millisecond, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, fmt.Errorf("poll %s: %w", url, err)
		}
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the status matters
			resp.Body.Close()
			if resp.StatusCode == want {
				return time.Now(), nil
			}
			last = "status " + strconv.Itoa(resp.StatusCode)
		} else {
			last = err.Error()
		}
		if exited, err := p.exitErr(); exited {
			return time.Time{}, fmt.Errorf("waiting for %s: %w; output: %s", url, err, p.logs)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s did not answer %d within %v (last: %s); output: %s", url, want, deadline, last, p.logs)
		case <-tick.C:
		}
	}
}

// waitInvoke polls an invocation through s until it echoes body: the sign that discovery has
// converged (for a remote app id) and the app channel works.
func waitInvoke(ctx context.Context, s *sidecar, targetAppID string, body []byte, deadline time.Duration) error {
	url := s.url("/v1.0/invoke/" + targetAppID + "/method/echo")
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("invoke %s: %w", url, err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		if resp, err := client.Do(req); err == nil {
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Equal(got, body) {
				return nil
			}
			last = fmt.Sprintf("status %d, %d bytes: %.200q", resp.StatusCode, len(got), got)
		} else {
			last = err.Error()
		}
		if exited, err := s.exitErr(); exited {
			return fmt.Errorf("invoke via %s: %w; output: %s", s.name, err, s.logs)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("invoke %s → %s did not echo within %v (last: %s); sidecar output: %s",
				s.appID, targetAppID, deadline, last, s.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startupResult is the start-up and idle-memory measurement.
type startupResult struct {
	Runs        []time.Duration `json:"runs_ns"`
	Min         time.Duration   `json:"min_ns"`
	Median      time.Duration   `json:"median_ns"`
	Max         time.Duration   `json:"max_ns"`
	IdleRSS     uint64          `json:"idle_rss_bytes"`
	IdleSettle  time.Duration   `json:"idle_settle_ns"`
	IdleRSSSeen []uint64        `json:"idle_rss_samples_bytes"`
}

// measureStartup starts runs sidecars one after another, each timed from exec to
// /v1.0/healthz/outbound = 204 (polled every millisecond); the first one is then left idle for
// settle and its VmRSS read. Each sidecar is stopped before the next starts.
func measureStartup(ctx context.Context, l *launcher, appPort, runs int, settle time.Duration, progress func(string, ...any)) (startupResult, error) {
	var res startupResult
	for i := range runs {
		s, err := l.start(sidecarSpec{appID: fmt.Sprintf("bench-start-%d-%d", os.Getpid(), i), appPort: appPort})
		if err != nil {
			return res, err
		}
		ready, err := waitStatus(ctx, s.proc, s.url("/v1.0/healthz/outbound"), http.StatusNoContent, time.Millisecond, 15*time.Second)
		if err != nil {
			s.Stop(2 * time.Second)
			return res, fmt.Errorf("start-up run %d: %w", i+1, err)
		}
		res.Runs = append(res.Runs, ready.Sub(s.started))
		if i == 0 {
			progress("  idle sidecar: settling %v before reading VmRSS", settle)
			res.IdleSettle = settle
			end := time.Now().Add(settle)
			for time.Now().Before(end) {
				select {
				case <-ctx.Done():
					s.Stop(2 * time.Second)
					return res, ctx.Err()
				case <-time.After(min(250*time.Millisecond, time.Until(end))):
				}
				m, err := procstat.Mem(s.Pid())
				if err != nil {
					s.Stop(2 * time.Second)
					return res, fmt.Errorf("idle sidecar memory: %w; output: %s", err, s.logs)
				}
				res.IdleRSSSeen = append(res.IdleRSSSeen, m.RSS)
				res.IdleRSS = m.RSS
			}
		}
		s.Stop(5 * time.Second)
	}
	sorted := slices.Clone(res.Runs)
	slices.Sort(sorted)
	res.Min, res.Max, res.Median = sorted[0], sorted[len(sorted)-1], sorted[(len(sorted)-1)/2] // lower median
	return res, nil
}

// portPicker hands out free loopback TCP ports, never the same one twice in a run. (A port is
// free when picked; another process could take it before the sidecar binds it, in which case the
// sidecar fails to start and the bench reports its output.)
type portPicker struct {
	used map[int]bool
}

func (pp *portPicker) pick(n int) ([]int, error) {
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100 {
			return nil, fmt.Errorf("could not find %d free loopback ports", n)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if pp.used[port] {
			continue
		}
		pp.used[port] = true
		ports = append(ports, port)
	}
	return ports, nil
}
