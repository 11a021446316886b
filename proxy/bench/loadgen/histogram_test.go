package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	// Every value must fall inside the bounds of its own bucket, and buckets must be contiguous.
	vals := []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 123456, 1 << 40, 1<<63 - 1, 1<<64 - 1}
	for _, v := range vals {
		i := bucketOf(v)
		lo, hi := bounds(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d with bounds [%d,%d]", v, i, lo, hi)
		}
		if i >= numBuckets {
			t.Errorf("value %d → bucket %d ≥ %d", v, i, numBuckets)
		}
	}
	for i := 1; i < numBuckets; i++ {
		_, prevHi := bounds(i - 1)
		lo, _ := bounds(i)
		if lo != prevHi+1 {
			t.Fatalf("gap between bucket %d (hi %d) and %d (lo %d)", i-1, prevHi, i, lo)
		}
	}
}

func TestQuantileAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := NewHistogram()
	var all []time.Duration
	for range 100000 {
		// Log-normal-ish latencies between ~50 µs and ~50 ms.
		d := time.Duration(50e3 * (1 + r.ExpFloat64()*r.ExpFloat64()*20))
		all = append(all, d)
		h.Record(d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 0.005 || diff < -0.005 {
			t.Errorf("q%.3f: got %v, exact %v (%.2f%% off)", q, got, exact, diff*100)
		}
	}
	if h.Count() != uint64(len(all)) || h.Max() != all[len(all)-1] {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
}

func TestMergeAndEmpty(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	if a.Quantile(0.5) != 0 || a.Mean() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	a.Record(1 * time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(-time.Second) // clamped to 0
	a.Merge(b)
	if a.Count() != 3 || a.Max() != 3*time.Millisecond || a.Quantile(0.01) != 0 {
		t.Fatalf("merged: count %d max %v q0.01 %v", a.Count(), a.Max(), a.Quantile(0.01))
	}
}
