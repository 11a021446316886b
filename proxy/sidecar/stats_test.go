package sidecar

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestStatsPage(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outrigger_retries_total", Help: "h"}, []string{"target"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "outrigger_gossip_members", Help: "h"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dapr_http_server_latency", Help: "h", Buckets: []float64{1, 10}})
	nan := prometheus.NewGauge(prometheus.GaugeOpts{Name: "z_nan", Help: "h"})
	reg.MustRegister(c, g, h, nan)
	c.WithLabelValues("apps.b").Add(3)
	c.WithLabelValues("apps.a").Inc()
	g.Set(2)
	h.Observe(4)
	h.Observe(6)
	nan.Set(math.NaN())

	b, err := json.Marshal(statsPage(reg)())
	if err != nil {
		t.Fatalf("the page does not encode as JSON: %v", err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"name": "dapr_http_server_latency_count", "value": 2.0},
		{"name": "dapr_http_server_latency_sum", "value": 10.0},
		{"name": "outrigger_gossip_members", "value": 2.0},
		{"name": "outrigger_retries_total", "labels": map[string]any{"target": "apps.a"}, "value": 1.0},
		{"name": "outrigger_retries_total", "labels": map[string]any{"target": "apps.b"}, "value": 3.0},
		{"name": "z_nan", "value": "NaN"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("/stats =\n%s\nwant\n%v", b, want)
	}

	empty, _ := json.Marshal(statsPage(prometheus.NewRegistry())())
	if string(empty) != "[]" {
		t.Errorf("/stats of an empty registry = %s, want []", empty)
	}
}
