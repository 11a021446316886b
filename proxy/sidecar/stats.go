package sidecar

import (
	"math"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outrigger/outrigger/proxy/admin"
)

// stat is one /stats row: a sample of the metrics registry.
type stat struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  any               `json:"value"` // a float64; NaN and ±Inf as Prometheus spells them
}

// statsPage is the admin /stats page: the samples /metrics serves, as rows
// of name, labels and value. Counters, gauges and untyped metrics give one
// row per label set; histograms and summaries give <name>_count and
// <name>_sum (their buckets and quantiles stay on /metrics). A failed
// gather shows what it did collect.
func statsPage(g prometheus.Gatherer) admin.Page {
	return func() any {
		mfs, _ := g.Gather() // partial families on error; /metrics reports the error itself
		out := []stat{}      // an empty page is [], not null
		for _, mf := range mfs {
			name := mf.GetName()
			for _, m := range mf.GetMetric() {
				labels := labelMap(m.GetLabel())
				switch mf.GetType() {
				case dto.MetricType_COUNTER:
					out = append(out, stat{name, labels, m.GetCounter().GetValue()})
				case dto.MetricType_GAUGE:
					out = append(out, stat{name, labels, m.GetGauge().GetValue()})
				case dto.MetricType_UNTYPED:
					out = append(out, stat{name, labels, m.GetUntyped().GetValue()})
				case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
					h := m.GetHistogram()
					out = append(out, stat{name + "_count", labels, float64(h.GetSampleCount())},
						stat{name + "_sum", labels, h.GetSampleSum()})
				case dto.MetricType_SUMMARY:
					s := m.GetSummary()
					out = append(out, stat{name + "_count", labels, float64(s.GetSampleCount())},
						stat{name + "_sum", labels, s.GetSampleSum()})
				}
			}
		}
		for i := range out {
			out[i].Value = jsonNumber(out[i].Value.(float64))
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out
	}
}

// jsonNumber is v, or its Prometheus text when JSON cannot hold it.
func jsonNumber(v float64) any {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return v
}

func labelMap(ls []*dto.LabelPair) map[string]string {
	if len(ls) == 0 {
		return nil
	}
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.GetName()] = l.GetValue()
	}
	return m
}
