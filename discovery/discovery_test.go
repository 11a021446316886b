package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testLogger discards unless DISCOVERY_TEST_LOG=debug|info is set, in which
// case it writes to stderr (t.Log would panic on memberlist's late lines).
func testLogger() *slog.Logger {
	switch os.Getenv("DISCOVERY_TEST_LOG") {
	case "debug":
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	case "info":
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	default:
		return slog.New(slog.DiscardHandler)
	}
}

// freePort returns a loopback port free for both TCP and UDP, used as a
// test's stand-in for DefaultGossipPort so tests never touch 7946.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// start starts a member and closes it when the test ends.
func start(t *testing.T, cfg Config) *Member {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start(%s): %v", cfg.AppID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = m.Close(ctx)
	})
	return m
}

// zeroConf starts a zero-config member whose "default" port is port.
func zeroConf(t *testing.T, appID string, port int, internalPort int) *Member {
	t.Helper()
	return start(t, Config{AppID: appID, InternalAddr: fmt.Sprintf("127.0.0.1:%d", internalPort), GossipPort: port})
}

// waitFor polls cond every 20 ms until it holds or timeout passes, and
// returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	deadline := begin.Add(timeout)
	for {
		if cond() {
			return time.Since(begin)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// addrs resolves appID on m and returns the sorted internal addresses (nil on error).
func addrs(m *Member, appID string) []string {
	insts, err := m.Resolve(context.Background(), appID)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(insts))
	for _, in := range insts {
		out = append(out, in.Addr)
	}
	slices.Sort(out)
	return out
}

func sees(m *Member, appID string, want ...string) func() bool {
	slices.Sort(want)
	return func() bool { return slices.Equal(addrs(m, appID), want) }
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("split %q: %v", hostport, err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func TestZeroConfigThreeMembersFindEachOther(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	a := zeroConf(t, "zc", port, 5001)
	b := zeroConf(t, "zc", port, 5002)
	c := zeroConf(t, "zc", port, 5003)

	if got := portOf(t, a.GossipAddr()); got != port {
		t.Fatalf("first member gossips on %d, want the default %d", got, port)
	}
	for _, m := range []*Member{b, c} {
		if got := portOf(t, m.GossipAddr()); got == port {
			t.Fatalf("%s bound the taken default port %d", m.Name(), port)
		}
	}
	for _, m := range []*Member{a, b, c} {
		waitFor(t, 5*time.Second, m.Name()+" sees all three",
			sees(m, "zc", "127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003"))
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	a1 := zeroConf(t, "orders", port, 6001)
	zeroConf(t, "orders", port, 6002)
	b := zeroConf(t, "billing", port, 6003)
	waitFor(t, 5*time.Second, "b sees both orders", sees(b, "orders", "127.0.0.1:6001", "127.0.0.1:6002"))
	waitFor(t, 5*time.Second, "a1 sees billing", sees(a1, "billing", "127.0.0.1:6003"))

	insts, err := b.Resolve(context.Background(), "billing")
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 || insts[0].AppID != "billing" || insts[0].Node != b.Name() {
		t.Fatalf("billing resolved to %+v, want only node %s", insts, b.Name())
	}
	// The result is a copy: changing it must not change the index.
	insts[0].Addr = "mutated"
	if got := addrs(b, "billing"); !slices.Equal(got, []string{"127.0.0.1:6003"}) {
		t.Fatalf("index changed through a returned slice: %v", got)
	}

	t.Run("unknown app fails fast", func(t *testing.T) {
		begin := time.Now()
		_, err := a1.Resolve(context.Background(), "nope")
		if !errors.Is(err, ErrNoInstances) {
			t.Fatalf("err = %v, want ErrNoInstances", err)
		}
		if !strings.Contains(err.Error(), `"nope"`) {
			t.Fatalf("error %q does not name the app id", err)
		}
		if d := time.Since(begin); d > 50*time.Millisecond {
			t.Fatalf("unknown app took %v", d)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := a1.Resolve(ctx, "orders"); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestKilledMemberLeavesResolutionWithin5s(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	a := zeroConf(t, "kill", port, 7001)
	b := zeroConf(t, "kill", port, 7002)
	victim := zeroConf(t, "kill", port, 7003)
	all := []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
	waitFor(t, 5*time.Second, "a sees three", sees(a, "kill", all...))
	waitFor(t, 5*time.Second, "b sees three", sees(b, "kill", all...))

	victim.kill() // no leave message: like SIGKILL
	begin := time.Now()
	for _, m := range []*Member{a, b} {
		waitFor(t, 5*time.Second-time.Since(begin), m.Name()+" drops the killed member",
			sees(m, "kill", "127.0.0.1:7001", "127.0.0.1:7002"))
	}
	t.Logf("killed member gone from both survivors after %v", time.Since(begin))

	var state string
	for _, mi := range a.Members() {
		if mi.Name == victim.Name() {
			state = mi.State
		}
	}
	if state != StateDead {
		t.Fatalf("Members lists the killed node as %q, want %q", state, StateDead)
	}
}

func TestCleanCloseLeavesAtOnce(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	a := zeroConf(t, "leave", port, 7101)
	b := zeroConf(t, "leave", port, 7102)
	waitFor(t, 5*time.Second, "a sees b", sees(a, "leave", "127.0.0.1:7101", "127.0.0.1:7102"))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(ctx); err != nil { // idempotent
		t.Fatalf("second Close: %v", err)
	}
	d := waitFor(t, 500*time.Millisecond, "a drops b", sees(a, "leave", "127.0.0.1:7101"))
	t.Logf("cleanly closed member gone after %v", d)

	var state string
	for _, mi := range a.Members() {
		if mi.Name == b.Name() {
			state = mi.State
		}
	}
	if state != StateDead {
		t.Fatalf("Members lists the closed node as %q, want %q", state, StateDead)
	}
}

func TestSeedDiesOthersStayAndNewDefaultMemberJoins(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	seed := zeroConf(t, "seed", port, 7201)
	b := zeroConf(t, "seed", port, 7202)
	c := zeroConf(t, "seed", port, 7203)
	waitFor(t, 5*time.Second, "b sees all", sees(b, "seed", "127.0.0.1:7201", "127.0.0.1:7202", "127.0.0.1:7203"))
	waitFor(t, 5*time.Second, "c sees all", sees(c, "seed", "127.0.0.1:7201", "127.0.0.1:7202", "127.0.0.1:7203"))

	seed.kill()
	waitFor(t, 5*time.Second, "b drops the seed, keeps c", sees(b, "seed", "127.0.0.1:7202", "127.0.0.1:7203"))
	waitFor(t, 5*time.Second, "c drops the seed, keeps b", sees(c, "seed", "127.0.0.1:7202", "127.0.0.1:7203"))

	d := zeroConf(t, "seed", port, 7204)
	if got := portOf(t, d.GossipAddr()); got != port {
		t.Fatalf("new member gossips on %d, want the freed default port %d", got, port)
	}
	want := []string{"127.0.0.1:7202", "127.0.0.1:7203", "127.0.0.1:7204"}
	// The survivors' re-join loop (every 2 s) finds the new rendezvous member.
	for _, m := range []*Member{d, b, c} {
		waitFor(t, 10*time.Second, m.Name()+" sees b, c and the new member", sees(m, "seed", want...))
	}
}

func TestExplicitJoinAndSeeds(t *testing.T) {
	t.Parallel()
	a := start(t, Config{AppID: "ja", InternalAddr: "127.0.0.1:7301"}) // GossipPort 0: any free port
	aPort := portOf(t, a.GossipAddr())

	// A DNS name in Join.
	b := start(t, Config{AppID: "jb", InternalAddr: "127.0.0.1:7302", Join: []string{"localhost:" + strconv.Itoa(aPort)}})
	waitFor(t, 5*time.Second, "b sees a via localhost", sees(b, "ja", "127.0.0.1:7301"))

	// Seeds alone (as read from the host-local sidecar registry), on a
	// rendezvous port nobody holds.
	c := start(t, Config{AppID: "jc", InternalAddr: "127.0.0.1:7303", GossipPort: 0,
		Seeds: func() []string { return []string{"not a seed", b.GossipAddr()} }})
	waitFor(t, 5*time.Second, "c sees a and b", func() bool {
		return sees(c, "ja", "127.0.0.1:7301")() && sees(c, "jb", "127.0.0.1:7302")()
	})
	waitFor(t, 5*time.Second, "a sees c", sees(a, "jc", "127.0.0.1:7303"))

	t.Run("taken port with Join set is an error", func(t *testing.T) {
		_, err := Start(context.Background(), Config{AppID: "jd", InternalAddr: "127.0.0.1:7304",
			GossipPort: aPort, Join: []string{a.GossipAddr()}, Logger: testLogger()})
		if err == nil {
			t.Fatal("Start on a taken port with Join set succeeded")
		}
	})
}

func TestUpdateActorTypes(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	a := start(t, Config{AppID: "actors", InternalAddr: "127.0.0.1:7401", GossipPort: port, ActorTypes: []string{"Cart"}})
	b := zeroConf(t, "other", port, 7402)
	hosts := func(m *Member, typ string) []string {
		var out []string
		for _, in := range m.ActorHosts(typ) {
			out = append(out, in.Addr)
		}
		return out
	}
	waitFor(t, 5*time.Second, "b sees Cart on a", func() bool { return slices.Equal(hosts(b, "Cart"), []string{"127.0.0.1:7401"}) })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.UpdateActorTypes(ctx, []string{"Order", "Payment"}); err != nil {
		t.Fatalf("UpdateActorTypes: %v", err)
	}
	waitFor(t, 5*time.Second, "b sees the new types", func() bool {
		return len(hosts(b, "Cart")) == 0 && slices.Equal(hosts(b, "Payment"), []string{"127.0.0.1:7401"})
	})
	insts, err := b.Resolve(ctx, "actors")
	if err != nil || len(insts) != 1 || !slices.Equal(insts[0].ActorTypes, []string{"Order", "Payment"}) {
		t.Fatalf("Resolve(actors) = %+v, %v; want one instance with [Order Payment]", insts, err)
	}

	long := make([]string, 100)
	for i := range long {
		long[i] = fmt.Sprintf("SomeRatherLongActorTypeName%03d", i)
	}
	if err := a.UpdateActorTypes(ctx, long); err == nil {
		t.Fatal("UpdateActorTypes accepted metadata over 512 bytes")
	}
	if got := hosts(b, "Order"); !slices.Equal(got, []string{"127.0.0.1:7401"}) {
		t.Fatalf("rejected update changed advertised types: Order hosts %v", got)
	}
}

func TestMembersForAdmin(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	a := start(t, Config{AppID: "adm-a", InternalAddr: "127.0.0.1:7501", GossipPort: port, ActorTypes: []string{"T"}})
	b := zeroConf(t, "adm-b", port, 7502)
	waitFor(t, 5*time.Second, "a lists two alive members", func() bool {
		ms := a.Members()
		return len(ms) == 2 && ms[0].State == StateAlive && ms[1].State == StateAlive
	})
	ms := a.Members()
	want := []MemberInfo{
		{Name: a.Name(), AppID: "adm-a", Addr: "127.0.0.1:7501", GossipAddr: a.GossipAddr(), State: StateAlive, ActorTypes: []string{"T"}},
		{Name: b.Name(), AppID: "adm-b", Addr: "127.0.0.1:7502", GossipAddr: b.GossipAddr(), State: StateAlive},
	}
	for i := range want {
		if fmt.Sprint(ms[i]) != fmt.Sprint(want[i]) {
			t.Errorf("Members()[%d] = %+v, want %+v", i, ms[i], want[i])
		}
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no app id", Config{InternalAddr: "127.0.0.1:1"}, "app id is required"},
		{"no internal addr", Config{AppID: "x"}, "internal address is required"},
		{"internal addr without port", Config{AppID: "x", InternalAddr: "127.0.0.1"}, "internal address"},
		{"internal addr bad port", Config{AppID: "x", InternalAddr: "127.0.0.1:http"}, "port must be a number"},
		{"bind addr not an IP", Config{AppID: "x", InternalAddr: "h:1", BindAddr: "localhost"}, "not an IP"},
		{"gossip port too big", Config{AppID: "x", InternalAddr: "h:1", GossipPort: 70000}, "out of range"},
		{"join without port", Config{AppID: "x", InternalAddr: "h:1", Join: []string{"10.0.0.1"}}, "join address"},
		{"unknown profile", Config{AppID: "x", InternalAddr: "h:1", Profile: Profile(9)}, "unknown profile"},
		{"too many actor types", Config{AppID: "x", InternalAddr: "h:1", ActorTypes: []string{strings.Repeat("a", 600)}}, "metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Start(context.Background(), tt.cfg)
			if err == nil {
				_ = m.Close(context.Background())
				t.Fatalf("Start succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseProfile(t *testing.T) {
	for in, want := range map[string]Profile{"": ProfileLocal, "local": ProfileLocal, "LAN": ProfileLAN, " lan ": ProfileLAN} {
		got, err := ParseProfile(in)
		if err != nil || got != want {
			t.Errorf("ParseProfile(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, _ := ParseProfile(got.String()); back != got {
			t.Errorf("ParseProfile(%v.String()) = %v", got, back)
		}
	}
	if _, err := ParseProfile("wan"); err == nil {
		t.Error("ParseProfile(wan) succeeded")
	}
}

// TestLocalProfileBudget pins the arithmetic behind the 5 s promise so a
// retune that breaks it fails here, not only in the timing test.
func TestLocalProfileBudget(t *testing.T) {
	c := localProfile()
	if k := c.SuspicionMult - 2; k > 0 {
		t.Fatalf("SuspicionMult %d waits for %d confirmations; suspicion would start at the max timeout", c.SuspicionMult, k)
	}
	probe := time.Duration(c.AwarenessMaxMultiplier) * c.ProbeInterval // worst-case slowed probe round
	suspicion := time.Duration(c.SuspicionMult) * c.ProbeInterval      // < 10 members
	if total := 2*probe + suspicion + 5*c.GossipInterval; total > 4*time.Second {
		t.Fatalf("worst-case detection %v leaves no margin under 5 s", total)
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		t.Fatalf("ProbeTimeout %v must be below ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	}
}

func TestLANProfileMembersJoin(t *testing.T) {
	t.Parallel()
	a := start(t, Config{AppID: "lan-a", InternalAddr: "127.0.0.1:7601", Profile: ProfileLAN})
	b := start(t, Config{AppID: "lan-b", InternalAddr: "127.0.0.1:7602", Profile: ProfileLAN, Join: []string{a.GossipAddr()}})
	waitFor(t, 5*time.Second, "a sees b", sees(a, "lan-b", "127.0.0.1:7602"))
	waitFor(t, 5*time.Second, "b sees a", sees(b, "lan-a", "127.0.0.1:7601"))
}

func TestSeedAliasOnAllInterfaces(t *testing.T) {
	m := &Member{gossipAddr: "10.1.2.3:7946"}
	if got := m.hostAlias("127.0.0.1:7946"); got != "10.1.2.3:7946" {
		t.Fatalf("hostAlias(loopback) = %q", got)
	}
	if got := m.hostAlias("10.9.9.9:7946"); got != "" {
		t.Fatalf("hostAlias(non-loopback) = %q, want empty", got)
	}
}
