package discovery

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

const (
	// rejoinInterval is how often a member checks that its seeds (rendezvous
	// address, Join, Seeds()) are alive members, and joins those that are not.
	rejoinInterval = 2 * time.Second
	// leaveTimeout bounds how long Close waits for the leave broadcast.
	leaveTimeout = time.Second
	// updateTimeout bounds how long UpdateActorTypes waits for the broadcast
	// when its context has no deadline.
	updateTimeout = time.Second
	// lookupTimeout bounds a DNS lookup of a seed name in the re-join loop.
	lookupTimeout = time.Second
)

// Member is this sidecar's membership in the gossip cluster. It resolves app
// ids from an in-memory index kept current by gossip events. Safe for
// concurrent use.
type Member struct {
	cfg        Config
	log        *slog.Logger
	ml         *memberlist.Memberlist
	ix         *index
	delegate   *metaDelegate
	name       string
	gossipAddr string // host:port this member gossips on
	rendezvous string // zero-config rendezvous host:port, "" with Join set

	updateMu sync.Mutex // serialises UpdateActorTypes

	stop      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Start binds gossip, joins the cluster (see Config for zero-config) and
// starts the background re-join loop. A join that finds nobody is not an
// error: the member may be the first; the loop keeps trying. ctx bounds the
// initial join only.
func Start(ctx context.Context, cfg Config) (*Member, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	meta, err := nodeMeta{AppID: cfg.AppID, InternalAddr: cfg.InternalAddr, ActorTypes: cfg.ActorTypes}.encode()
	if err != nil {
		return nil, err
	}
	name, err := nodeName(cfg.AppID)
	if err != nil {
		return nil, err
	}
	m := &Member{
		cfg:      cfg,
		log:      cfg.Logger,
		ix:       newIndex(cfg.Logger),
		delegate: &metaDelegate{},
		name:     name,
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	m.delegate.meta.Store(&meta)

	zeroConf := len(cfg.Join) == 0
	if zeroConf {
		m.rendezvous = rendezvousAddr(cfg.BindAddr, cfg.GossipPort)
	}
	m.ml, err = m.create(cfg.GossipPort)
	if err != nil && zeroConf && cfg.GossipPort > 0 {
		m.log.Debug("discovery: rendezvous port taken, binding a free port", "port", cfg.GossipPort, "err", err)
		m.ml, err = m.create(0)
	}
	if err != nil {
		return nil, fmt.Errorf("discovery: start gossip on %s port %d: %w", cfg.BindAddr, cfg.GossipPort, err)
	}
	// Read once, before anything else runs against this memberlist.
	m.gossipAddr = m.ml.LocalNode().Address()
	m.log.Info("discovery: gossip started", "node", m.name, "gossip_addr", m.gossipAddr,
		"profile", cfg.Profile.String(), "rendezvous", m.rendezvous)

	joined := make(chan struct{})
	go func() {
		defer close(joined)
		m.joinMissing(true)
	}()
	select {
	case <-joined:
	case <-ctx.Done():
		m.log.Warn("discovery: initial join still running when start-up context ended", "err", ctx.Err())
	}
	go func() {
		<-joined
		m.rejoinLoop()
	}()
	return m, nil
}

// create builds the memberlist with this member's profile on port (0 = any).
func (m *Member) create(port int) (*memberlist.Memberlist, error) {
	c, err := m.cfg.Profile.memberlistConfig()
	if err != nil {
		return nil, err
	}
	c.Name = m.name
	c.BindAddr = m.cfg.BindAddr
	c.BindPort = port
	c.AdvertisePort = port
	c.Label = gossipLabel
	c.Delegate = m.delegate
	c.Events = m.ix
	c.Logger = memberlistLogger(m.log)
	return memberlist.Create(c)
}

// nodeName is the app id plus 8 random hex digits: unique per sidecar start,
// so a restarted sidecar never collides with its dead predecessor.
func nodeName(appID string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("discovery: node name: %w", err)
	}
	return appID + "-" + hex.EncodeToString(b[:]), nil
}

// Name is this member's node name (app id plus a random suffix).
func (m *Member) Name() string { return m.name }

// GossipAddr is the host:port this member gossips on; other members can Join it.
func (m *Member) GossipAddr() string { return m.gossipAddr }

// Resolve implements Resolver: the alive instances of appID (this sidecar
// included), sorted by node name; ErrNoInstances at once if there are none.
// Suspect members stay resolvable until declared dead (memberlist offers no
// suspect event); see Balancer.MarkFailed for the gap.
func (m *Member) Resolve(ctx context.Context, appID string) ([]Instance, error) {
	return m.ix.Resolve(ctx, appID)
}

// ActorHosts returns the alive instances that host actorType (nil if none).
func (m *Member) ActorHosts(actorType string) []Instance {
	return m.ix.actorHosts(actorType)
}

// UpdateActorTypes replaces the actor types this sidecar advertises and
// broadcasts the change, waiting for the broadcast until ctx's deadline (or
// 1 s). The new list applies locally at once even if the wait times out.
func (m *Member) UpdateActorTypes(ctx context.Context, types []string) error {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	meta, err := nodeMeta{AppID: m.cfg.AppID, InternalAddr: m.cfg.InternalAddr, ActorTypes: slices.Clone(types)}.encode()
	if err != nil {
		return err
	}
	m.delegate.meta.Store(&meta)
	timeout := updateTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		timeout = time.Millisecond
	}
	if err := m.ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("discovery: broadcast actor types: %w", err)
	}
	return nil
}

// Members lists the cluster for the admin endpoint: alive members (this one
// included), then recently dead ones (failed or left; kept 5 minutes, at
// most 64), each group sorted by app id and name. A suspect member shows as
// alive: see StateAlive.
func (m *Member) Members() []MemberInfo {
	live := m.ix.liveMembers()
	byAppName := func(a, b MemberInfo) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.Name, b.Name))
	}
	out := make([]MemberInfo, 0, len(live))
	for _, info := range live {
		out = append(out, info)
	}
	slices.SortFunc(out, byAppName)
	gone := m.ix.departedMembers()
	slices.SortFunc(gone, byAppName)
	return append(out, gone...)
}

// Close leaves the cluster (others drop this member at once), waiting at most
// 1 s or until ctx's deadline for the leave broadcast, then shuts gossip down.
// Safe to call more than once.
func (m *Member) Close(ctx context.Context) error {
	m.closeOnce.Do(func() {
		m.stopLoop(ctx)
		timeout := leaveTimeout
		if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
			timeout = max(time.Until(d), 10*time.Millisecond)
		}
		var errs []error
		if err := m.ml.Leave(timeout); err != nil {
			errs = append(errs, fmt.Errorf("discovery: leave: %w", err))
		}
		if err := m.ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("discovery: shutdown: %w", err))
		}
		m.closeErr = errors.Join(errs...)
		m.log.Info("discovery: left the cluster", "node", m.name)
	})
	return m.closeErr
}

// kill stops gossip without a leave, as a SIGKILL would (tests).
func (m *Member) kill() {
	m.closeOnce.Do(func() {
		m.stopLoop(context.Background())
		m.closeErr = m.ml.Shutdown()
	})
}

func (m *Member) stopLoop(ctx context.Context) {
	close(m.stop)
	select {
	case <-m.loopDone:
	case <-ctx.Done():
	}
}

// rejoinLoop runs until Close: every rejoinInterval it joins any seed that is
// not an alive member. Cheap when all are present (no network I/O).
func (m *Member) rejoinLoop() {
	defer close(m.loopDone)
	t := time.NewTicker(rejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.joinMissing(false)
		}
	}
}

// joinMissing joins the seeds that are not alive members.
func (m *Member) joinMissing(initial bool) {
	seeds := m.seeds()
	if len(seeds) == 0 {
		return
	}
	alive := make(map[string]bool)
	for _, info := range m.ix.liveMembers() {
		if info.Name != m.name {
			alive[info.GossipAddr] = true
		}
	}
	var missing []string
	for _, s := range seeds {
		addrs, err := m.resolveSeed(s)
		if err != nil {
			m.log.Debug("discovery: seed lookup failed", "seed", s, "err", err)
			continue
		}
		if slices.ContainsFunc(addrs, m.isSelf) {
			continue
		}
		if !slices.ContainsFunc(addrs, func(a string) bool { return alive[a] || alive[m.hostAlias(a)] }) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return
	}
	select {
	case <-m.stop:
		return
	default:
	}
	n, err := m.ml.Join(missing)
	switch {
	case err == nil:
		m.log.Info("discovery: joined", "seeds", missing, "contacted", n)
	case initial && len(m.cfg.Join) > 0:
		m.log.Warn("discovery: could not join yet, will keep trying", "seeds", missing, "err", err)
	case initial:
		m.log.Info("discovery: no other member found yet, will keep looking", "seeds", missing)
	default:
		m.log.Debug("discovery: re-join failed", "seeds", missing, "err", err)
	}
}

// seeds lists the join candidates: rendezvous, Join and Seeds(), deduplicated.
func (m *Member) seeds() []string {
	var out []string
	if m.rendezvous != "" {
		out = append(out, m.rendezvous)
	}
	out = append(out, m.cfg.Join...)
	if m.cfg.Seeds != nil {
		for _, s := range m.cfg.Seeds() {
			if err := checkHostPort(s); err != nil {
				m.log.Debug("discovery: ignoring bad seed", "err", err)
				continue
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// resolveSeed turns host:port into ip:port strings (DNS names looked up).
func (m *Member) resolveSeed(s string) ([]string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip != nil {
		return []string{net.JoinHostPort(ip.String(), port)}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip, port))
	}
	return out, nil
}

// hostAlias maps a loopback ip:port to this host's advertised ip:port, so a
// seed 127.0.0.1:7946 matches a member bound to 0.0.0.0:7946 that gossips as
// 10.0.0.5:7946. Other addresses map to "".
func (m *Member) hostAlias(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return ""
	}
	ownHost, _, _ := net.SplitHostPort(m.gossipAddr)
	return net.JoinHostPort(ownHost, port)
}

// isSelf reports whether ip:port reaches this member's own gossip socket.
func (m *Member) isSelf(addr string) bool {
	if addr == m.gossipAddr {
		return true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ownHost, ownPort, _ := net.SplitHostPort(m.gossipAddr)
	if port != ownPort {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	bind := net.ParseIP(m.cfg.BindAddr)
	return ip.Equal(net.ParseIP(ownHost)) ||
		((ip.IsLoopback() || ip.IsUnspecified()) && (bind.IsLoopback() || bind.IsUnspecified()))
}

// metaDelegate hands memberlist our node metadata. Its methods may be called
// concurrently from memberlist's goroutines; the metadata is swapped
// atomically by UpdateActorTypes.
type metaDelegate struct {
	meta atomic.Pointer[[]byte]
}

// NodeMeta implements memberlist.Delegate. The encoding never exceeds
// MetaMaxSize (checked by encode), so limit is always respected.
func (d *metaDelegate) NodeMeta(limit int) []byte {
	b := *d.meta.Load()
	if len(b) > limit {
		return nil
	}
	return b
}

// NotifyMsg implements memberlist.Delegate; we send no user messages.
func (d *metaDelegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate; we broadcast nothing extra.
func (d *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate; no state beyond node metadata.
func (d *metaDelegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate; nothing to merge.
func (d *metaDelegate) MergeRemoteState(buf []byte, join bool) {}

var (
	_ memberlist.Delegate = (*metaDelegate)(nil)
	_ Resolver            = (*Member)(nil)
)
