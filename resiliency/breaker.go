package resiliency

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// ErrBreakerOpen is returned (wrapped, naming the target) by Execute when the
// target's circuit breaker is open, or half-open with its maxRequests trial
// calls already in flight; op was not called. It is never retried. Callers
// map it to Dapr's error for the building block.
var ErrBreakerOpen = errors.New("circuit breaker is open")

// breakerKey is what must be equal for a reloaded target to keep its
// breakers' state.
type breakerKey struct {
	maxRequests       uint32
	interval, timeout time.Duration
	trip, scope       string
	cacheSize         int
}

func keyOf(d *targetDef) breakerKey {
	cb := d.breaker
	k := breakerKey{maxRequests: cb.maxRequests, interval: cb.interval, timeout: cb.timeout, trip: cb.trip}
	if d.info.Kind == KindActor {
		k.scope, k.cacheSize = d.scope, d.cacheSize
	}
	return k
}

type breakerMeta struct {
	target Target
	obs    Observer
}

// breakerSet holds the circuit breakers of one target: one for the target,
// or (actors scoped by id) one per actor id in an LRU of cacheSize, or both.
type breakerSet struct {
	key  breakerKey
	spec *cbSpec
	meta atomic.Pointer[breakerMeta]

	typ  *breaker // nil when scoped by id only
	mu   sync.Mutex
	byID *lru[string, *breaker] // nil unless scoped by id or both
}

type breaker struct {
	id       string
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	lastTrip atomic.Int64 // unix nanoseconds
}

func newBreakerSet(d *targetDef, meta *breakerMeta) *breakerSet {
	s := &breakerSet{key: keyOf(d), spec: d.breaker}
	s.meta.Store(meta)
	scope := ""
	if d.info.Kind == KindActor {
		scope = d.scope
	}
	if scope != "id" {
		s.typ = s.newBreaker("")
	}
	if scope == "id" || scope == "both" {
		s.byID = newLRU[string, *breaker](d.cacheSize)
	}
	return s
}

var (
	errExcluded = errors.New("not counted")
	errFailed   = errors.New("failed")
)

func (s *breakerSet) newBreaker(id string) *breaker {
	b := &breaker{id: id}
	name := s.meta.Load().target.String()
	if id != "" {
		name += "[" + id + "]"
	}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: s.spec.maxRequests,
		Interval:    s.spec.interval,
		Timeout:     s.spec.timeout,
		ReadyToTrip: s.spec.readyToTrip,
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.lastTrip.Store(time.Now().UnixNano())
			}
			m := s.meta.Load()
			m.obs.Activated(m.target, PolicyCircuitBreaker, to.String())
		},
		IsExcluded: func(err error) bool { return err == errExcluded },
	})
	return b
}

func (s *breakerSet) forID(id string) *breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.byID.get(id)
	if !ok {
		b = s.newBreaker(id)
		s.byID.add(id, b)
	}
	return b
}

// outcome is how an attempt counts for a breaker.
type outcome int

const (
	succeeded outcome = iota // success, or an error that is not the target's fault
	failed                   // a transient error: the target's fault
	excluded                 // not counted (the caller gave up)
)

// acquire asks the target's breakers (and the actor id's) to let a call
// through. It returns the state seen before the call, and done, which must
// be called once with the call's outcome.
func (s *breakerSet) acquire(id string) (done func(outcome), state string, err error) {
	var bs [2]*breaker
	n := 0
	if s.typ != nil {
		bs[n] = s.typ
		n++
	}
	if s.byID != nil {
		bs[n] = s.forID(id)
		n++
	}
	var dones [2]func(error)
	for i := range n {
		st := bs[i].cb.State()
		if i == 0 || st != gobreaker.StateClosed {
			state = st.String()
		}
		d, err := bs[i].cb.Allow()
		if err != nil {
			for j := range i {
				dones[j](errExcluded)
			}
			return nil, state, s.openError(bs[i], err)
		}
		dones[i] = d
	}
	return func(o outcome) {
		var e error
		switch o {
		case failed:
			e = errFailed
		case excluded:
			e = errExcluded
		}
		for i := range n {
			dones[i](e)
		}
	}, state, nil
}

func (s *breakerSet) openError(b *breaker, err error) error {
	target := s.meta.Load().target.String()
	if b.id != "" {
		target += " (actor id " + b.id + ")"
	}
	if errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%w: %s is half-open and its trial calls are in flight", ErrBreakerOpen, target)
	}
	return fmt.Errorf("%w: %s", ErrBreakerOpen, target)
}

// infos describes the set's breakers for Snapshot.
func (s *breakerSet) infos() []BreakerInfo {
	target := s.meta.Load().target.String()
	var out []BreakerInfo
	add := func(b *breaker) {
		c := b.cb.Counts()
		bi := BreakerInfo{
			Target: target, Key: b.id, Policy: s.spec.name, State: b.cb.State().String(),
			Counts: Counts{Requests: c.Requests, TotalSuccesses: c.TotalSuccesses, TotalFailures: c.TotalFailures,
				ConsecutiveSuccesses: c.ConsecutiveSuccesses, ConsecutiveFailures: c.ConsecutiveFailures},
		}
		if t := b.lastTrip.Load(); t != 0 {
			bi.LastTrip = time.Unix(0, t)
		}
		out = append(out, bi)
	}
	if s.typ != nil {
		add(s.typ)
	}
	if s.byID != nil {
		s.mu.Lock()
		var ids []*breaker
		s.byID.each(func(_ string, b *breaker) { ids = append(ids, b) })
		s.mu.Unlock()
		for _, b := range ids {
			add(b)
		}
	}
	return out
}
