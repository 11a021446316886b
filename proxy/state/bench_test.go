package state

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Benchmarks of the HTTP hot path: handler → plugin over loopback gRPC.
// Run: go test -run '^$' -bench . ./proxy/state

func BenchmarkHTTPSet(b *testing.B) {
	f := newFixture(b)
	h := f.mux()
	body := `[{"key":"bench","value":{"id":42,"name":"benchmark","tags":["a","b"]}}]`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/v1.0/state/mem", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkHTTPGet(b *testing.B) {
	f := newFixture(b)
	h := f.mux()
	if w := do(b, h, http.MethodPost, "/v1.0/state/mem", `[{"key":"bench","value":{"id":42}}]`); w.Code != http.StatusNoContent {
		b.Fatalf("seed: %d", w.Code)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "/v1.0/state/mem/bench", nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkHTTPGetParallel(b *testing.B) {
	f := newFixture(b)
	h := f.mux()
	if w := do(b, h, http.MethodPost, "/v1.0/state/mem", `[{"key":"bench","value":{"id":42}}]`); w.Code != http.StatusNoContent {
		b.Fatalf("seed: %d", w.Code)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, "/v1.0/state/mem/bench", nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}
