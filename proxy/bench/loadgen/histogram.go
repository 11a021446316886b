package loadgen

import (
	"math/bits"
	"time"
)

// A Histogram counts durations in log-linear buckets as HdrHistogram does: every power of two is
// split into subBuckets/2 linear sub-buckets, so a recorded value is off by at most 1/(subBuckets/2)
// of itself (~0.8 %; reported values are bucket midpoints, halving that). Its size is fixed, so
// recording never allocates. The zero value is not usable; call NewHistogram.
type Histogram struct {
	counts []uint64
	total  uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

const (
	subBits    = 8
	subBuckets = 1 << subBits // values below this are exact (nanoseconds)
	halfSub    = subBuckets / 2
	// Largest exponent for 64-bit values: bits.Len64 ≤ 64, so e ≤ 64-subBits.
	numBuckets = (64-subBits)*halfSub + subBuckets
)

// NewHistogram returns an empty histogram covering 1 ns to the full int64 range.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets)}
}

func bucketOf(v uint64) int {
	e := bits.Len64(v) - subBits
	if e <= 0 {
		return int(v) // exact region [0, subBuckets)
	}
	return e*halfSub + int(v>>uint(e)) // v>>e lies in [halfSub, subBuckets)
}

// bounds returns the smallest and largest value that fall into bucket i.
func bounds(i int) (lo, hi uint64) {
	if i < subBuckets {
		return uint64(i), uint64(i)
	}
	e := (i - halfSub) / halfSub
	m := uint64(i - e*halfSub)
	lo = m << uint(e)
	return lo, lo + (1 << uint(e)) - 1
}

// Record adds one observation. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	if h.total == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.total++
	h.sum += d
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest observation (exact), or 0 when empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the exact mean, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return h.sum / time.Duration(h.total)
}

// Quantile returns the value at quantile q (0 < q ≤ 1): the midpoint of the bucket holding the
// ceil(q·n)-th smallest observation, clamped to the observed min and max. 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q * float64(h.total))
	if float64(rank) < q*float64(h.total) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bounds(i)
			v := time.Duration(lo + (hi-lo)/2)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
