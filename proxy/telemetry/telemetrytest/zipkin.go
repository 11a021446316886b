package telemetrytest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Span is a Zipkin v2 span, as much of it as tests look at.
type Span struct {
	TraceID       string `json:"traceId"`
	ID            string `json:"id"`
	ParentID      string `json:"parentId"`
	Name          string `json:"name"`
	Kind          string `json:"kind"`
	Duration      int64  `json:"duration"`
	LocalEndpoint struct {
		ServiceName string `json:"serviceName"`
	} `json:"localEndpoint"`
	Tags map[string]string `json:"tags"`
}

// Collector is a running Zipkin-compatible collector.
type Collector struct {
	srv     *httptest.Server
	mu      sync.Mutex
	spans   []Span
	posts   int
	arrived chan struct{}
}

// NewCollector starts a collector; it stops when the test ends.
func NewCollector(t testing.TB) *Collector {
	c := &Collector{arrived: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/spans", func(w http.ResponseWriter, r *http.Request) {
		var batch []Span
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.spans = append(c.spans, batch...)
		c.posts++
		c.mu.Unlock()
		select {
		case c.arrived <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	c.srv = httptest.NewServer(mux)
	t.Cleanup(c.srv.Close)
	return c
}

// URL is the endpointAddress to configure: http://127.0.0.1:port/api/v2/spans.
func (c *Collector) URL() string { return c.srv.URL + "/api/v2/spans" }

// Spans returns a copy of every span received so far.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// Posts is how many export requests arrived.
func (c *Collector) Posts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.posts
}

// WaitFor waits until a span satisfying ok has arrived and returns it, or
// fails the test after timeout listing what did arrive.
func (c *Collector) WaitFor(t testing.TB, timeout time.Duration, ok func(Span) bool) Span {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, s := range c.Spans() {
			if ok(s) {
				return s
			}
		}
		select {
		case <-c.arrived:
		case <-deadline:
			t.Fatalf("no matching span within %v; received %+v", timeout, c.Spans())
			return Span{}
		}
	}
}
