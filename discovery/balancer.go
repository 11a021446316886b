package discovery

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Picker chooses one instance of an app per request.
type Picker interface {
	// Pick returns an instance of appID and a done func the caller must call
	// exactly once when the request ends (later calls are no-ops).
	Pick(ctx context.Context, appID string) (Instance, func(err error), error)
}

// Strategy is how a Balancer chooses among healthy instances.
type Strategy int

const (
	// RoundRobin cycles through the instances of each app in node-name order.
	RoundRobin Strategy = iota
	// LeastOutstanding picks two instances at random and takes the one with
	// fewer requests in flight ("power of two choices"): near-optimal load
	// spread at the cost of one extra counter read.
	LeastOutstanding
)

// DefaultFailureCooldown is how long MarkFailed keeps an instance out of
// rotation: long enough to cover the Local profile's ~3 s until gossip
// declares a killed member dead, short enough that a false alarm heals fast.
const DefaultFailureCooldown = 5 * time.Second

// Balancer is a Picker over a Resolver. It counts requests in flight per
// instance address (reported by Outstanding, used by LeastOutstanding) and
// skips instances recently marked failed. Safe for concurrent use.
type Balancer struct {
	r        Resolver
	strategy Strategy
	cooldown time.Duration

	// filter, when set, narrows an app's instances before picking (outlier
	// ejection); it sees and returns internal addresses.
	filter func(appID string, addrs []string) []string

	mu          sync.Mutex
	next        map[string]uint64    // round-robin position per app id
	outstanding map[string]int       // requests in flight per instance address
	failed      map[string]time.Time // instance address → skipped until
}

// BalancerOption configures a Balancer.
type BalancerOption func(*Balancer)

// WithStrategy sets the strategy (default RoundRobin).
func WithStrategy(s Strategy) BalancerOption { return func(b *Balancer) { b.strategy = s } }

// WithFilter narrows an app's healthy instances before each pick, e.g. to
// leave out instances outlier detection ejected. f gets the instances'
// internal addresses and returns those to keep; keeping none keeps all. It is
// called without the balancer's lock held.
func WithFilter(f func(appID string, addrs []string) []string) BalancerOption {
	return func(b *Balancer) { b.filter = f }
}

// WithFailureCooldown sets how long MarkFailed skips an instance
// (default DefaultFailureCooldown; ≤ 0 keeps the default).
func WithFailureCooldown(d time.Duration) BalancerOption {
	return func(b *Balancer) {
		if d > 0 {
			b.cooldown = d
		}
	}
}

// NewBalancer returns a Balancer picking from r's instances.
func NewBalancer(r Resolver, opts ...BalancerOption) *Balancer {
	b := &Balancer{
		r:           r,
		cooldown:    DefaultFailureCooldown,
		next:        make(map[string]uint64),
		outstanding: make(map[string]int),
		failed:      make(map[string]time.Time),
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Pick implements Picker. Instances marked failed are skipped unless all
// are, in which case all are candidates again (gossip still lists them; a
// request that may succeed beats a certain error). The done func decrements
// the in-flight count; if its error is a refused connection
// (syscall.ECONNREFUSED in the chain) it also marks the instance failed.
func (b *Balancer) Pick(ctx context.Context, appID string) (Instance, func(err error), error) {
	insts, err := b.r.Resolve(ctx, appID)
	if err != nil {
		return Instance{}, nil, err
	}
	if len(insts) == 0 { // a Resolver must not do this; be safe anyway
		return Instance{}, nil, ErrNoInstances
	}
	if b.filter != nil && len(insts) > 1 {
		insts = b.filtered(appID, insts)
	}
	b.mu.Lock()
	cands := b.healthyLocked(insts, time.Now())
	var inst Instance
	switch b.strategy {
	case LeastOutstanding:
		inst = b.p2cLocked(cands)
	default:
		n := b.next[appID]
		b.next[appID] = n + 1
		inst = cands[n%uint64(len(cands))]
	}
	b.outstanding[inst.Addr]++
	b.mu.Unlock()

	var finished atomic.Bool
	done := func(err error) {
		if !finished.CompareAndSwap(false, true) {
			return
		}
		b.mu.Lock()
		if b.outstanding[inst.Addr] <= 1 {
			delete(b.outstanding, inst.Addr)
		} else {
			b.outstanding[inst.Addr]--
		}
		b.mu.Unlock()
		if errors.Is(err, syscall.ECONNREFUSED) {
			b.MarkFailed(inst.Addr)
		}
	}
	return inst, done, nil
}

// filtered applies the filter; an empty answer keeps every instance.
func (b *Balancer) filtered(appID string, insts []Instance) []Instance {
	addrs := make([]string, len(insts))
	for i, in := range insts {
		addrs[i] = in.Addr
	}
	keep := b.filter(appID, addrs)
	if len(keep) == 0 || len(keep) == len(insts) {
		return insts
	}
	out := make([]Instance, 0, len(keep))
	for _, in := range insts {
		if slices.Contains(keep, in.Addr) {
			out = append(out, in)
		}
	}
	if len(out) == 0 {
		return insts
	}
	return out
}

// healthyLocked drops instances in their failure cooldown (and forgets
// expired marks); if that leaves none, it returns insts unchanged.
func (b *Balancer) healthyLocked(insts []Instance, now time.Time) []Instance {
	if len(b.failed) == 0 {
		return insts
	}
	out := make([]Instance, 0, len(insts))
	for _, in := range insts {
		if until, ok := b.failed[in.Addr]; ok {
			if now.Before(until) {
				continue
			}
			delete(b.failed, in.Addr)
		}
		out = append(out, in)
	}
	if len(out) == 0 {
		return insts
	}
	return out
}

// p2cLocked picks two distinct random candidates and returns the one with
// fewer requests in flight (the first on a tie, which is itself random).
func (b *Balancer) p2cLocked(cands []Instance) Instance {
	if len(cands) == 1 {
		return cands[0]
	}
	i := rand.IntN(len(cands))
	j := rand.IntN(len(cands) - 1)
	if j >= i {
		j++
	}
	if b.outstanding[cands[j].Addr] < b.outstanding[cands[i].Addr] {
		return cands[j]
	}
	return cands[i]
}

// MarkFailed takes the instance at addr (its internal gRPC address) out of
// rotation for the failure cooldown. Call it when a request to it fails in a
// way that means "not there" (connection refused, gRPC Unavailable before
// any response) so traffic stops going to a dead sidecar in the seconds
// before gossip declares it dead. Marks for other addresses are unaffected;
// the mark expires on its own.
func (b *Balancer) MarkFailed(addr string) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for a, until := range b.failed { // forget expired marks of vanished instances
		if !now.Before(until) {
			delete(b.failed, a)
		}
	}
	b.failed[addr] = now.Add(b.cooldown)
}

// Outstanding returns the number of requests in flight to addr.
func (b *Balancer) Outstanding(addr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.outstanding[addr]
}

var _ Picker = (*Balancer)(nil)
