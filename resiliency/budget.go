package resiliency

import (
	"sync"
	"time"
)

// budgetWindow is the sliding window over which a retry budget compares
// retries with requests.
const budgetWindow = 10 * time.Second

// budgetSpec is a retry policy's budget (Outrigger extension): in any
// budgetWindow, retries may be at most percent % of the requests plus
// minPerSecond × the window's seconds.
type budgetSpec struct {
	percent      float64
	minPerSecond float64
}

// budget is one target's retry budget: ten one-second buckets counting
// requests (first attempts) and retries. A retry is allowed when, counted
// over the last budgetWindow, it keeps retries within the spec. Deposits are
// made when a request starts, so concurrent failing requests share the
// allowance fairly instead of draining a small bucket.
type budget struct {
	spec    budgetSpec
	mu      sync.Mutex
	buckets [int(budgetWindow / time.Second)]budgetBucket
}

type budgetBucket struct {
	sec               int64
	requests, retries float64
}

func newBudget(spec budgetSpec) *budget { return &budget{spec: spec} }

// bucket returns the bucket of second sec, cleared if it held an older one.
func (b *budget) bucket(sec int64) *budgetBucket {
	bk := &b.buckets[int(sec%int64(len(b.buckets)))]
	if bk.sec != sec {
		*bk = budgetBucket{sec: sec}
	}
	return bk
}

// deposit records a request.
func (b *budget) deposit(now time.Time) {
	sec := now.Unix()
	b.mu.Lock()
	b.bucket(sec).requests++
	b.mu.Unlock()
}

// withdraw reports whether one more retry fits the budget, and records it
// if so.
func (b *budget) withdraw(now time.Time) bool {
	sec := now.Unix()
	b.mu.Lock()
	defer b.mu.Unlock()
	var requests, retries float64
	for i := range b.buckets {
		bk := &b.buckets[i]
		if bk.sec > sec-int64(len(b.buckets)) && bk.sec <= sec {
			requests += bk.requests
			retries += bk.retries
		}
	}
	allowed := b.spec.minPerSecond*budgetWindow.Seconds() + b.spec.percent/100*requests
	if retries+1 > allowed {
		return false
	}
	b.bucket(sec).retries++
	return true
}
