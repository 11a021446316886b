package discovery

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultGossipPort is the well-known gossip port: the CLI's default for
// --gossip-port and the rendezvous port zero-config members try to bind or join.
const DefaultGossipPort = 7946

// gossipLabel prefixes every gossip packet and stream. Members with another
// label (a Consul or Serf agent that happens to sit on 7946, say) are ignored
// instead of merged into our cluster.
const gossipLabel = "outrigger"

// Config says who this member is and how it finds the others.
type Config struct {
	// AppID is the Dapr app id this sidecar serves. Required.
	AppID string
	// InternalAddr is the sidecar-to-sidecar gRPC address (host:port) other
	// members dial to reach this app. Required.
	InternalAddr string
	// ActorTypes are the actor types hosted here; change them later with
	// (*Member).UpdateActorTypes.
	ActorTypes []string

	// BindAddr is the IP gossip binds to (UDP and TCP). Default 127.0.0.1.
	BindAddr string
	// GossipPort is the port gossip binds to; 0 (or negative) binds any free
	// port. The CLI defaults it to DefaultGossipPort.
	//
	// With Join empty (zero-config on one host) GossipPort is also the
	// rendezvous: if the port is taken, a free port is bound instead and the
	// member joins BindAddr:GossipPort (BindAddr:DefaultGossipPort when
	// GossipPort is 0). With Join set, a taken port is an error.
	GossipPort int
	// Join lists members to join (host:port; DNS names allowed). Empty means
	// zero-config on one host, see GossipPort.
	Join []string
	// Seeds optionally returns extra join addresses (host:port), for example
	// the gossip addresses in the host-local sidecar registry. It is called at
	// start and on every re-join round (about every 2 s), so keep it cheap.
	Seeds func() []string
	// Profile picks the timing profile. Default ProfileLocal.
	Profile Profile
	// Logger receives discovery's logs; memberlist's own (chatty) log lines
	// are routed to it at debug level. Nil discards.
	Logger *slog.Logger
}

// Profile is a set of gossip timings, after memberlist's Default*Config.
type Profile int

const (
	// ProfileLocal is tuned for members on one host (loopback): a killed
	// sidecar leaves resolution within 5 s.
	ProfileLocal Profile = iota
	// ProfileLAN is tuned for members spread over a LAN.
	ProfileLAN
)

// String returns the profile's name as ParseProfile accepts it.
func (p Profile) String() string {
	switch p {
	case ProfileLocal:
		return "local"
	case ProfileLAN:
		return "lan"
	default:
		return "Profile(" + strconv.Itoa(int(p)) + ")"
	}
}

// ParseProfile maps "local" or "lan" (any case; "" = local) to a Profile.
func ParseProfile(s string) (Profile, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "local":
		return ProfileLocal, nil
	case "lan":
		return ProfileLAN, nil
	default:
		return 0, fmt.Errorf("discovery: unknown profile %q (want local or lan)", s)
	}
}

// memberlistConfig returns the memberlist settings of a profile.
func (p Profile) memberlistConfig() (*memberlist.Config, error) {
	switch p {
	case ProfileLocal:
		return localProfile(), nil
	case ProfileLAN:
		return lanProfile(), nil
	default:
		return nil, fmt.Errorf("discovery: unknown profile %s", p)
	}
}

// lanProfile spells out every timing we rely on, each with its reason. It
// starts from memberlist's LAN defaults for the fields we do not touch
// (protocol version, buffer sizes, DNS config path).
func lanProfile() *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.TCPTimeout = 5 * time.Second          // joins and push/pull finish in ms on a LAN; 5 s tolerates a stalled peer without blocking start-up for long
	c.IndirectChecks = 3                    // ask 3 peers before suspecting: one lossy path alone must not fail a node
	c.RetransmitMult = 4                    // each broadcast goes out 4*log(N+1) times: survives UDP loss on a busy LAN
	c.SuspicionMult = 4                     // suspect for 4*log(N)*ProbeInterval (≥ 4 s): time for a slow but live node to refute
	c.SuspicionMaxTimeoutMult = 6           // without peer confirmations the suspicion lasts up to 6x that (an isolated prober decides slowly)
	c.PushPullInterval = 30 * time.Second   // full-state TCP sync is the expensive repair path; every 30 s is plenty
	c.ProbeInterval = time.Second           // one failure check per second
	c.ProbeTimeout = 500 * time.Millisecond // comfortably above a LAN's 99th-percentile RTT
	c.DisableTcpPings = false               // TCP fallback pings catch nodes whose UDP alone is blocked
	c.AwarenessMaxMultiplier = 8            // a node that doubts itself (missed acks) slows its probing to at most 8 s
	c.GossipNodes = 3                       // gossip to 3 random nodes per round: fast spread, bounded fan-out
	c.GossipInterval = 200 * time.Millisecond
	c.GossipToTheDeadTime = 30 * time.Second // keep telling a dead node for 30 s so a falsely-failed one can refute
	c.EnableCompression = true               // saves LAN bandwidth on push/pull; our metadata is small anyway
	c.DeadNodeReclaimTime = 0                // node names are unique per start (app-id + random), never reclaimed
	return c
}

// localProfile starts from lanProfile and overrides what one host (loopback,
// no packet loss, microsecond RTT) makes safe to shorten. Target: a SIGKILLed
// sidecar disappears from resolution within 5 s; a clean Close at once.
//
// Worst case for a kill with < 10 members: the victim is probed within about
// one ProbeInterval by some member (0.5 s), the direct+indirect+TCP probe
// fails by the end of that interval (0.5 s), suspicion lasts
// SuspicionMult*ProbeInterval (1 s), and the dead message spreads in a few
// GossipIntervals: about 2-3 s.
func localProfile() *memberlist.Config {
	c := lanProfile()
	c.TCPTimeout = time.Second                // loopback connects and refusals are immediate
	c.IndirectChecks = 1                      // all members share one network stack: more indirect probes add no information
	c.RetransmitMult = 2                      // loopback UDP does not drop packets under normal load
	c.SuspicionMult = 2                       // k = SuspicionMult-2 = 0 peer confirmations awaited, so suspicion is exactly 2*ProbeInterval (1 s)
	c.SuspicionMaxTimeoutMult = 4             // unused while k = 0; bounds suspicion if memberlist's formula changes
	c.PushPullInterval = 10 * time.Second     // full sync among a handful of local members is cheap and repairs missed gossip
	c.ProbeInterval = 500 * time.Millisecond  // probe often: detection time dominates the 5 s budget
	c.ProbeTimeout = 200 * time.Millisecond   // loopback RTT is µs; 200 ms absorbs GC pauses and scheduling on a loaded machine
	c.AwarenessMaxMultiplier = 2              // a self-doubting member slows probing to at most 1 s, keeping detection in budget
	c.GossipInterval = 100 * time.Millisecond // spread joins, leaves and deaths within ~100 ms
	c.GossipToTheDeadTime = 10 * time.Second  // sidecars restart quickly; a short refutation window is enough
	c.EnableCompression = false               // loopback bandwidth is free; skip lzw's CPU and allocations
	c.HandoffQueueDepth = 256                 // few members, little traffic: a shorter inbound queue bound
	return c
}

// rendezvousAddr is the host:port zero-config members bind or join.
func rendezvousAddr(bindAddr string, port int) string {
	host := bindAddr
	if ip := net.ParseIP(bindAddr); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	if port <= 0 {
		port = DefaultGossipPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// withDefaults validates c and fills defaults.
func (c Config) withDefaults() (Config, error) {
	if strings.TrimSpace(c.AppID) == "" {
		return c, fmt.Errorf("discovery: app id is required")
	}
	if c.InternalAddr == "" {
		return c, fmt.Errorf("discovery: internal address is required (host:port)")
	}
	if err := checkHostPort(c.InternalAddr); err != nil {
		return c, fmt.Errorf("discovery: internal address: %w", err)
	}
	if c.BindAddr == "" {
		c.BindAddr = "127.0.0.1"
	}
	if net.ParseIP(c.BindAddr) == nil {
		return c, fmt.Errorf("discovery: bind address %q is not an IP address", c.BindAddr)
	}
	if c.GossipPort > 65535 {
		return c, fmt.Errorf("discovery: gossip port %d out of range", c.GossipPort)
	}
	if c.GossipPort < 0 {
		c.GossipPort = 0
	}
	for _, j := range c.Join {
		if err := checkHostPort(j); err != nil {
			return c, fmt.Errorf("discovery: join address: %w", err)
		}
	}
	if _, err := c.Profile.memberlistConfig(); err != nil {
		return c, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.ActorTypes = append([]string(nil), c.ActorTypes...)
	return c, nil
}

// checkHostPort accepts host:port with a numeric port in 1..65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if host == "" {
		return fmt.Errorf("%q: missing host", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be a number in 1..65535", s)
	}
	return nil
}
