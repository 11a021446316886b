package e2etest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// reservedPorts holds every port FreePort handed out in this test process,
// so parallel tests never pick the same "free" port between probing and the
// child's bind. It is process-wide by nature: the ports are.
var reservedPorts = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// FreePort returns a loopback port free for TCP and UDP (gossip uses both),
// never the same twice in this process.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("probe a free port: %v", err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		pc, uerr := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		ln.Close()
		if uerr != nil {
			continue
		}
		pc.Close()
		reservedPorts.Lock()
		taken := reservedPorts.m[p]
		reservedPorts.m[p] = true
		reservedPorts.Unlock()
		if !taken {
			return p
		}
	}
	t.Fatal("no free loopback port after 100 tries")
	return 0
}

// Uniq returns prefix plus 8 random hex digits (app ids, topics, tables).
func Uniq(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NeedServer fails the test (never skips) when a backend is not listening
// on addr, saying how to start it.
func NeedServer(t testing.TB, name, addr, howTo string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable on %s (%v); start it with: %s (or run `bash .ci/services`)", name, addr, err, howTo)
	}
	c.Close()
}

// WaitFor polls cond every 20 ms until it holds, failing the test when
// deadline passes first.
func WaitFor(t testing.TB, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// Cluster is what the sidecars of one test share: one private gossip
// rendezvous port and one private OUTRIGGER_HOME, so they see each other
// and nothing else.
type Cluster struct {
	Home       string
	GossipPort int
}

// NewCluster returns a Cluster with a new temp home and a free gossip port.
func NewCluster(t testing.TB) Cluster {
	t.Helper()
	return Cluster{Home: t.TempDir(), GossipPort: FreePort(t)}
}
