package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrNoInstances is returned (wrapped with the app id) when no healthy
// instance of an app is known. It is returned at once, never after a wait.
var ErrNoInstances = errors.New("no healthy instances")

// Instance is one healthy sidecar serving an app.
type Instance struct {
	AppID string
	// Addr is the sidecar's internal gRPC address (host:port).
	Addr string
	// Node is the memberlist node name (unique per sidecar start).
	Node string
	// ActorTypes are the actor types the sidecar hosts. Shared: do not modify.
	ActorTypes []string
}

// Resolver finds the healthy instances of an app id.
type Resolver interface {
	// Resolve returns the healthy instances of appID, or an error wrapping
	// ErrNoInstances at once when there are none.
	Resolve(ctx context.Context, appID string) ([]Instance, error)
}

// Member states reported by MemberInfo.State. memberlist v0.7.0 does not
// expose suspicion (its public Node.State is never updated: the internal
// nodeState.State shadows it), nor whether a departed node failed or left, so
// a member is alive until declared dead or gone, then dead.
const (
	StateAlive = "alive"
	StateDead  = "dead"
)

// MemberInfo describes one cluster member for the admin endpoint.
type MemberInfo struct {
	Name       string   `json:"name"`
	AppID      string   `json:"appId"`
	Addr       string   `json:"addr"` // internal gRPC host:port
	GossipAddr string   `json:"gossipAddr"`
	State      string   `json:"state"` // alive or dead (failed or left)
	ActorTypes []string `json:"actorTypes,omitempty"`
}

// How long, and how many, departed members stay listed by Members.
const (
	departedTTL = 5 * time.Minute
	departedMax = 64
)

// index is the in-memory view of the cluster, maintained by memberlist's
// EventDelegate callbacks. Readers load an immutable snapshot (no lock);
// the rare writers (join, update, leave) rebuild it under mu.
type index struct {
	log *slog.Logger

	mu       sync.Mutex
	nodes    map[string]MemberInfo // live members (alive or suspect) by node name
	departed map[string]departedMember

	snap atomic.Pointer[snapshot]
}

type departedMember struct {
	info MemberInfo
	at   time.Time
}

// snapshot is immutable once published.
type snapshot struct {
	byApp   map[string][]Instance // sorted by node name
	byActor map[string][]Instance // sorted by node name
}

func newIndex(log *slog.Logger) *index {
	ix := &index{
		log:      log,
		nodes:    make(map[string]MemberInfo),
		departed: make(map[string]departedMember),
	}
	ix.snap.Store(&snapshot{})
	return ix
}

// NotifyJoin implements memberlist.EventDelegate. memberlist calls the three
// Notify methods one at a time (never concurrently) with its node lock held,
// so they must not block or call back into memberlist.
func (ix *index) NotifyJoin(n *memberlist.Node) { ix.upsert(n) }

// NotifyUpdate implements memberlist.EventDelegate (metadata changed).
func (ix *index) NotifyUpdate(n *memberlist.Node) { ix.upsert(n) }

// NotifyLeave implements memberlist.EventDelegate: the node failed or left.
func (ix *index) NotifyLeave(n *memberlist.Node) {
	info := nodeInfo(n)
	info.State = StateDead
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.nodes[n.Name]; ok && info.AppID == "" {
		info = MemberInfo{Name: old.Name, AppID: old.AppID, Addr: old.Addr, GossipAddr: info.GossipAddr, State: info.State, ActorTypes: old.ActorTypes}
	}
	delete(ix.nodes, n.Name)
	now := time.Now()
	ix.departed[n.Name] = departedMember{info: info, at: now}
	ix.pruneDepartedLocked(now)
	ix.publishLocked()
	ix.log.Info("discovery: member gone", "node", n.Name, "app_id", info.AppID)
}

func (ix *index) upsert(n *memberlist.Node) {
	info := nodeInfo(n)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	_, known := ix.nodes[n.Name]
	ix.nodes[n.Name] = info
	delete(ix.departed, n.Name)
	ix.publishLocked()
	if !known {
		ix.log.Info("discovery: member joined", "node", n.Name, "app_id", info.AppID, "addr", info.Addr, "gossip_addr", info.GossipAddr)
	} else {
		ix.log.Debug("discovery: member updated", "node", n.Name, "app_id", info.AppID, "actor_types", info.ActorTypes)
	}
}

// nodeInfo reads a memberlist node; a node whose metadata is not ours keeps
// an empty AppID, is listed by Members and never resolved.
func nodeInfo(n *memberlist.Node) MemberInfo {
	info := MemberInfo{Name: n.Name, GossipAddr: n.Address(), State: StateAlive}
	if m, err := decodeMeta(n.Meta); err == nil {
		info.AppID, info.Addr, info.ActorTypes = m.AppID, m.InternalAddr, m.ActorTypes
	}
	return info
}

func (ix *index) pruneDepartedLocked(now time.Time) {
	for name, d := range ix.departed {
		if now.Sub(d.at) > departedTTL {
			delete(ix.departed, name)
		}
	}
	for len(ix.departed) > departedMax {
		oldest, at := "", now
		for name, d := range ix.departed {
			if !d.at.After(at) {
				oldest, at = name, d.at
			}
		}
		delete(ix.departed, oldest)
	}
}

// publishLocked rebuilds the lookup snapshot from ix.nodes. O(members ×
// actor types), run only on membership events.
func (ix *index) publishLocked() {
	s := &snapshot{byApp: make(map[string][]Instance), byActor: make(map[string][]Instance)}
	for _, info := range ix.nodes {
		if info.AppID == "" {
			continue
		}
		inst := Instance{AppID: info.AppID, Addr: info.Addr, Node: info.Name, ActorTypes: info.ActorTypes}
		s.byApp[inst.AppID] = append(s.byApp[inst.AppID], inst)
		for _, t := range inst.ActorTypes {
			s.byActor[t] = append(s.byActor[t], inst)
		}
	}
	byNode := func(a, b Instance) int { return cmp.Compare(a.Node, b.Node) }
	for _, l := range s.byApp {
		slices.SortFunc(l, byNode)
	}
	for _, l := range s.byActor {
		slices.SortFunc(l, byNode)
	}
	ix.snap.Store(s)
}

// Resolve implements Resolver: a map lookup in the current snapshot.
func (ix *index) Resolve(ctx context.Context, appID string) ([]Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discovery: resolve %q: %w", appID, err)
	}
	l := ix.snap.Load().byApp[appID]
	if len(l) == 0 {
		return nil, fmt.Errorf("discovery: app %q: %w", appID, ErrNoInstances)
	}
	return slices.Clone(l), nil
}

// actorHosts returns the instances hosting actorType (nil if none).
func (ix *index) actorHosts(actorType string) []Instance {
	return slices.Clone(ix.snap.Load().byActor[actorType])
}

// departedMembers lists recently dead or departed members.
func (ix *index) departedMembers() []MemberInfo {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make([]MemberInfo, 0, len(ix.departed))
	for _, d := range ix.departed {
		out = append(out, d.info)
	}
	return out
}

// liveMembers lists the members the index considers alive.
func (ix *index) liveMembers() map[string]MemberInfo {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make(map[string]MemberInfo, len(ix.nodes))
	for k, v := range ix.nodes {
		out[k] = v
	}
	return out
}

var (
	_ memberlist.EventDelegate = (*index)(nil)
	_ Resolver                 = (*index)(nil)
)
