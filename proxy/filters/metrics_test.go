package filters_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outrigger/outrigger/proxy/filters"
	"github.com/outrigger/outrigger/proxy/pipeline"
	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/telemetry"
)

func newMetrics(t testing.TB, spec resources.MetricSpec) (*telemetry.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg, spec, "app1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// find returns the metric of family name whose labels include all of want.
func find(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return m
		}
	}
	t.Fatalf("no %s%v", name, want)
	return nil
}

func TestMetricsHTTP(t *testing.T) {
	m, reg := newMetrics(t, resources.MetricSpec{HTTP: &resources.MetricHTTP{
		IncreasedCardinality: new(bool), PathMatching: []string{"/v1.0/invoke/{app}/method/orders/{id}"}}})
	router := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/orders/") {
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte("hello"))
			return
		}
		http.NotFound(w, r)
	})
	srv := httpChain(t, router, filters.Metrics(m), filters.APIToken("tok"))
	do(t, "POST", srv.URL+"/v1.0/invoke/app2/method/orders/1", map[string]string{"dapr-api-token": "tok"})
	do(t, "POST", srv.URL+"/v1.0/invoke/app2/method/orders/2", map[string]string{"dapr-api-token": "tok"})
	do(t, "GET", srv.URL+"/v1.0/invoke/app2/method/users/2", map[string]string{"dapr-api-token": "tok"})
	do(t, "GET", srv.URL+"/v1.0/state/s/k", nil) // denied by the token filter: still counted

	if got := find(t, reg, "dapr_http_server_request_count", map[string]string{"app_id": "app1", "method": "POST",
		"path": "/v1.0/invoke/{app}/method/orders/{id}", "status": "201"}).GetCounter().GetValue(); got != 2 {
		t.Errorf("matched path count %v", got)
	}
	if got := find(t, reg, "dapr_http_server_request_count", map[string]string{"method": "GET", "path": "", "status": "404"}).GetCounter().GetValue(); got != 1 {
		t.Errorf("unmatched path count %v", got)
	}
	if got := find(t, reg, "dapr_http_server_request_count", map[string]string{"method": "GET", "status": "401"}).GetCounter().GetValue(); got != 1 {
		t.Errorf("denied call count %v", got)
	}
	if h := find(t, reg, "dapr_http_server_latency", map[string]string{"status": "201"}).GetHistogram(); h.GetSampleCount() != 2 {
		t.Errorf("latency samples %v", h.GetSampleCount())
	}
	if h := find(t, reg, "dapr_http_server_request_bytes", nil).GetHistogram(); h.GetSampleCount() != 4 || h.GetSampleSum() != 8 {
		t.Errorf("request bytes count %v sum %v", h.GetSampleCount(), h.GetSampleSum())
	}
	if h := find(t, reg, "dapr_http_server_response_bytes", nil).GetHistogram(); h.GetSampleSum() < 10 {
		t.Errorf("response bytes sum %v", h.GetSampleSum())
	}
}

func TestMetricsGRPC(t *testing.T) {
	m, reg := newMetrics(t, resources.MetricSpec{})
	_, cc := grpcChain(t, filters.Metrics(m))
	client := runtimev1.NewDaprClient(cc)
	if _, err := client.GetState(context.Background(), &runtimev1.GetStateRequest{StoreName: "s", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetBulkState(context.Background(), &runtimev1.GetBulkStateRequest{}); err == nil {
		t.Fatal("unimplemented call succeeded")
	}
	if got := find(t, reg, "dapr_grpc_io_server_completed_rpcs", map[string]string{"app_id": "app1",
		"grpc_server_method": "/dapr.proto.runtime.v1.Dapr/GetState", "grpc_server_status": "OK"}).GetCounter().GetValue(); got != 1 {
		t.Errorf("GetState count %v", got)
	}
	if got := find(t, reg, "dapr_grpc_io_server_server_latency", map[string]string{
		"grpc_server_method": "/dapr.proto.runtime.v1.Dapr/GetBulkState", "grpc_server_status": "Unimplemented"}).GetHistogram().GetSampleCount(); got != 1 {
		t.Errorf("GetBulkState latency samples %v", got)
	}
}

// BenchmarkFilterOverhead measures what the tracing and metrics filters add
// to one HTTP API call (a trivial router, no network), off and on.
func BenchmarkFilterOverhead(b *testing.B) {
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer discard.Close()
	zipkin := discard.URL + "/api/v2/spans"
	router := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	metricsOn, _ := newMetrics(b, resources.MetricSpec{})
	cases := []struct {
		name    string
		filters func() []pipeline.Filter
		header  string
	}{
		{"router-only", func() []pipeline.Filter { return nil }, ""},
		{"tracing-off+metrics-off", func() []pipeline.Filter {
			off, _ := newMetrics(b, resources.MetricSpec{Enabled: new(bool)})
			return []pipeline.Filter{filters.Tracing(newTracing(b, zipkin, "0")), filters.Metrics(off)}
		}, parentTP},
		{"metrics", func() []pipeline.Filter { return []pipeline.Filter{filters.Metrics(metricsOn)} }, ""},
		{"tracing-unsampled", func() []pipeline.Filter { return []pipeline.Filter{filters.Tracing(newTracing(b, zipkin, "1"))} },
			"00-" + parentTrace + "-" + parentSpan + "-00"},
		{"tracing-sampled-no-exporter", func() []pipeline.Filter { return []pipeline.Filter{filters.Tracing(newTracing(b, "", "1"))} }, parentTP},
		{"tracing-sampled", func() []pipeline.Filter { return []pipeline.Filter{filters.Tracing(newTracing(b, zipkin, "1"))} }, parentTP},
		{"tracing-sampled+metrics", func() []pipeline.Filter {
			return []pipeline.Filter{filters.Tracing(newTracing(b, zipkin, "1")), filters.Metrics(metricsOn)}
		}, parentTP},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ch, err := pipeline.New(c.filters()...)
			if err != nil {
				b.Fatal(err)
			}
			h := ch.HTTP(router)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/v1.0/invoke/app2/method/orders", nil)
				if c.header != "" {
					req.Header.Set("traceparent", c.header)
				}
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
