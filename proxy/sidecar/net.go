package sidecar

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc"
)

func gracefulStop(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
	}
}

// listenHosts are the API servers' bind addresses: --dapr-listen-addresses, or
// loopback on IPv4 and (when the host has it) IPv6, like daprd.
func listenHosts(flag string) []string {
	if flag != "" {
		var out []string
		for _, a := range strings.Split(flag, ",") {
			if a = strings.Trim(strings.TrimSpace(a), "[]"); a != "" {
				out = append(out, a)
			}
		}
		return out
	}
	return []string{"127.0.0.1", "::1"}
}

// listenAll binds port on every host; the first must succeed, IPv6 loopback may
// be missing. Port 0 picks one free port, reused for the other hosts.
func listenAll(hosts []string, p int) ([]net.Listener, error) {
	var lns []net.Listener
	for i, h := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(p)))
		if err != nil {
			if i == 0 {
				return nil, err
			}
			continue // e.g. no IPv6 loopback
		}
		if p == 0 {
			p = ln.Addr().(*net.TCPAddr).Port
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, l := range lns {
		_ = l.Close()
	}
}

func addrs(lns []net.Listener) string {
	var s []string
	for _, l := range lns {
		s = append(s, l.Addr().String())
	}
	return strings.Join(s, ",")
}

func port(lns []net.Listener) int {
	if len(lns) == 0 {
		return 0
	}
	return lns[0].Addr().(*net.TCPAddr).Port
}

// advertiseHost is where other sidecars reach this one: DAPR_HOST_IP, else
// loopback when gossip is host-local, else the first non-loopback IPv4.
func advertiseHost(o *Options) string {
	if ip := os.Getenv("DAPR_HOST_IP"); ip != "" {
		return ip
	}
	if len(o.GossipJoin) == 0 {
		return "127.0.0.1"
	}
	ifaces, _ := net.InterfaceAddrs()
	for _, a := range ifaces {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}

// freshConns tracks HTTP connections that have not sent a request yet
// (clients' pools open them ahead of need), so shutdown can close them at once
// instead of waiting for them as http.Server.Shutdown does.
type freshConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (f *freshConns) track(c net.Conn, st http.ConnState) {
	f.mu.Lock()
	if st == http.StateNew {
		f.m[c] = struct{}{}
	} else {
		delete(f.m, c)
	}
	f.mu.Unlock()
}

func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.m {
		_ = c.Close()
		delete(f.m, c)
	}
}
