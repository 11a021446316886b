package e2etest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// SidecarConfig describes one `outrigger sidecar` to launch.
type SidecarConfig struct {
	Bin        string   // the outrigger binary
	AppID      string   // --app-id
	Home       string   // OUTRIGGER_HOME; "" = a new temp dir
	GossipPort int      // --gossip-port; 0 = a free port (a private cluster)
	Args       []string // extra flags (--app-port, --resources-path …)
	Env        []string // extra KEY=VALUE after CleanEnv
	Proc       ProcOptions
}

// Sidecar is one running `outrigger sidecar`.
type Sidecar struct {
	*Proc
	AppID                                       string
	Home                                        string
	HTTPPort, GRPCPort, MetricsPort, GossipPort int
}

// LaunchSidecar starts a sidecar on free loopback ports (the internal gRPC
// and admin ports are chosen by the sidecar) without waiting for it.
func LaunchSidecar(t testing.TB, c SidecarConfig) *Sidecar {
	t.Helper()
	if c.Home == "" {
		c.Home = t.TempDir()
	}
	if c.GossipPort == 0 {
		c.GossipPort = FreePort(t)
	}
	s := &Sidecar{AppID: c.AppID, Home: c.Home, GossipPort: c.GossipPort,
		HTTPPort: FreePort(t), GRPCPort: FreePort(t), MetricsPort: FreePort(t)}
	args := []string{"sidecar",
		"--app-id", c.AppID,
		"--dapr-http-port", strconv.Itoa(s.HTTPPort),
		"--dapr-grpc-port", strconv.Itoa(s.GRPCPort),
		"--metrics-port", strconv.Itoa(s.MetricsPort),
		"--dapr-internal-grpc-port", "0",
		"--admin-port", "0",
		"--gossip-port", strconv.Itoa(c.GossipPort),
		"--log-level", "info",
	}
	cmd := exec.Command(c.Bin, append(args, c.Args...)...)
	cmd.Env = CleanEnv(nil, append([]string{"OUTRIGGER_HOME=" + c.Home}, c.Env...)...)
	s.Proc = StartProc(t, fmt.Sprintf("sidecar %s (http %d, grpc %d)", c.AppID, s.HTTPPort, s.GRPCPort), cmd, c.Proc)
	return s
}

// URL is http://127.0.0.1:<http port><path>.
func (s *Sidecar) URL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.HTTPPort) + path
}

// GRPCAddr is the sidecar's gRPC API address.
func (s *Sidecar) GRPCAddr() string { return "127.0.0.1:" + strconv.Itoa(s.GRPCPort) }

// WaitHealthy polls GET /v1.0/healthz until it answers 204.
func (s *Sidecar) WaitHealthy(t testing.TB, deadline time.Duration) {
	t.Helper()
	s.WaitStatus(t, "/v1.0/healthz", http.StatusNoContent, deadline)
}

// WaitStatus polls GET path every 20 ms until it answers want, failing the
// test after deadline or when the process exits.
func (s *Sidecar) WaitStatus(t testing.TB, path string, want int, deadline time.Duration) {
	t.Helper()
	cl := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer cl.CloseIdleConnections()
	end := time.Now().Add(deadline)
	last := ""
	for {
		last = getStatus(cl, s.URL(path), want)
		if last == "" {
			return
		}
		if s.Exited() {
			t.Fatalf("sidecar %s exited before GET %s answered %d: %v\n%s", s.AppID, path, want, s.Err(), s.Out)
		}
		if time.Now().After(end) {
			t.Fatalf("sidecar %s: GET %s did not answer %d within %v (last: %s)", s.AppID, path, want, deadline, last)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// getStatus GETs url and returns "" when it answered want, else what it got.
func getStatus(cl *http.Client, url string, want int) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := cl.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == want {
		return ""
	}
	return fmt.Sprintf("%s %s", resp.Status, b)
}
