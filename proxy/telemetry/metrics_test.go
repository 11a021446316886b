package telemetry_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/telemetry"
)

func newMetrics(t *testing.T, spec resources.MetricSpec) (*telemetry.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg, spec, "app1", "ns1", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func ptr[T any](v T) *T { return &v }

// series returns "name{l1=v1,...}" for every series gathered, labels sorted.
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			key := mf.GetName() + "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestMetricNamesAndLabelsAreDaprs(t *testing.T) {
	m, reg := newMetrics(t, resources.MetricSpec{})
	m.RecordHTTPServer("GET", "/v1.0/state/store/key1", 200, 10, 20, 3*time.Millisecond)
	m.RecordHTTPServer("GET", "/v1.0/state/store/key2", 200, -1, 20, 3*time.Millisecond)
	m.RecordGRPCServer("/dapr.proto.runtime.v1.Dapr/GetState", codes.NotFound, time.Millisecond)
	m.RecordInvocationRequestSent("app2", false)
	m.RecordInvocationResponseReceived("app2", 200, false, 5*time.Millisecond)
	m.RecordInvocationRequestReceived("app0")
	m.RecordInvocationResponseSent("app0", 500)
	m.RecordPubsubEgress("pubsub", "orders", true, time.Millisecond)
	m.RecordPubsubIngress("pubsub", "orders", telemetry.PubsubRetry, "", time.Millisecond)
	m.RecordStateOperation("store", "get", false, time.Millisecond)
	m.RecordResiliencyLoaded("res1")
	m.RecordResiliencyExecuted("res1", telemetry.PolicyRetry, telemetry.FlowOutbound, telemetry.ResiliencyAppTarget("app2"), "")
	m.RecordResiliencyActivated("res1", telemetry.PolicyCircuitBreaker, telemetry.FlowOutbound, telemetry.ResiliencyComponentTarget("store", "statestore"), "open")
	m.SetBreakerState("app_app2", telemetry.BreakerOpen)
	m.AddRetry("app_app2")
	m.AddRetry("app_app2")
	m.AddRetryBudgetExhausted("app_app2")
	m.SetEjectedInstances("app2", 1)
	m.AddPluginRestart("state-sqlite")
	m.SetGossipMembers(3)

	got := series(t, reg)
	want := map[string]float64{
		// daprd 1.14 default (increasedCardinality): the state key is dropped from the path.
		"dapr_http_server_request_count{app_id=app1,method=GET,path=/v1.0/state/store,status=200}":                                                                 2,
		"dapr_http_server_response_count{app_id=app1,method=GET,path=/v1.0/state/store,status=200}":                                                                2,
		"dapr_http_server_latency{app_id=app1,method=GET,path=/v1.0/state/store,status=200}":                                                                       2,
		"dapr_http_server_request_bytes{app_id=app1}":                                                                                                              2,
		"dapr_http_server_response_bytes{app_id=app1}":                                                                                                             2,
		"dapr_grpc_io_server_completed_rpcs{app_id=app1,grpc_server_method=/dapr.proto.runtime.v1.Dapr/GetState,grpc_server_status=NotFound}":                      1,
		"dapr_grpc_io_server_server_latency{app_id=app1,grpc_server_method=/dapr.proto.runtime.v1.Dapr/GetState,grpc_server_status=NotFound}":                      1,
		"dapr_runtime_service_invocation_req_sent_total{app_id=app1,dst_app_id=app2,type=unary}":                                                                   1,
		"dapr_runtime_service_invocation_res_recv_total{app_id=app1,src_app_id=app2,status=200,type=unary}":                                                        1,
		"dapr_runtime_service_invocation_res_recv_latency_ms{app_id=app1,src_app_id=app2,status=200}":                                                              1,
		"dapr_runtime_service_invocation_req_recv_total{app_id=app1,src_app_id=app0}":                                                                              1,
		"dapr_runtime_service_invocation_res_sent_total{app_id=app1,dst_app_id=app0,status=500}":                                                                   1,
		"dapr_component_pubsub_egress_count{app_id=app1,component=pubsub,namespace=ns1,success=true,topic=orders}":                                                 1,
		"dapr_component_pubsub_egress_latencies{app_id=app1,component=pubsub,namespace=ns1,success=true,topic=orders}":                                             1,
		"dapr_component_pubsub_ingress_count{app_id=app1,component=pubsub,namespace=ns1,process_status=retry,status=retry,topic=orders}":                           1,
		"dapr_component_pubsub_ingress_latencies{app_id=app1,component=pubsub,namespace=ns1,process_status=retry,status=retry,topic=orders}":                       1,
		"dapr_component_state_count{app_id=app1,component=store,namespace=ns1,operation=get,success=false}":                                                        1,
		"dapr_component_state_latencies{app_id=app1,component=store,namespace=ns1,operation=get,success=false}":                                                    1,
		"dapr_resiliency_loaded{app_id=app1,name=res1,namespace=ns1}":                                                                                              1,
		"dapr_resiliency_count{app_id=app1,flow_direction=outbound,name=res1,namespace=ns1,policy=retry,status=,target=app_app2}":                                  1,
		"dapr_resiliency_activations_total{app_id=app1,flow_direction=outbound,name=res1,namespace=ns1,policy=circuitbreaker,status=open,target=statestore_store}": 1,
		"outrigger_breaker_state{target=app_app2}":                                                                                                                 1 * float64(telemetry.BreakerOpen),
		"outrigger_retries_total{target=app_app2}":                                                                                                                 2,
		"outrigger_retry_budget_exhausted_total{target=app_app2}":                                                                                                  1,
		"outrigger_ejected_instances{app_id=app2}":                                                                                                                 1,
		"outrigger_plugin_restarts_total{plugin=state-sqlite}":                                                                                                     1,
		"outrigger_gossip_members{}": 3,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s", k)
		}
	}
}

func TestLatencyIsMillisecondsInConfiguredBuckets(t *testing.T) {
	reg2 := prometheus.NewRegistry()
	m2, err := telemetry.NewMetrics(reg2, resources.MetricSpec{LatencyDistributionBuckets: &[]int{5, 50, 500}}, "app1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	m2.RecordGRPCServer("/x", codes.OK, 20*time.Millisecond)
	mfs, _ := reg2.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "dapr_grpc_io_server_server_latency" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		var bounds []float64
		var counts []uint64
		for _, b := range h.GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
			counts = append(counts, b.GetCumulativeCount())
		}
		if !slices.Equal(bounds, []float64{5, 50, 500}) || !slices.Equal(counts, []uint64{0, 1, 1}) || h.GetSampleSum() != 20 {
			t.Fatalf("buckets %v counts %v sum %v", bounds, counts, h.GetSampleSum())
		}
		return
	}
	t.Fatal("latency histogram not gathered")
}

func TestHTTPPathLabels(t *testing.T) {
	cases := []struct {
		name string
		http *resources.MetricHTTP
		path string
		want string
	}{
		{"default keeps path, strips state key", nil, "/v1.0/state/store/k", "/v1.0/state/store"},
		{"default strips secret name", nil, "/v1.0/secrets/vault/db", "/v1.0/secrets/vault"},
		{"default strips actor id", nil, "/v1.0/actors/Cart/42/method/add", "/v1.0/actors/Cart/{id}/method"},
		{"default keeps invoke path", nil, "/v1.0/invoke/app2/method/orders/1", "/v1.0/invoke/app2/method/orders/1"},
		{"low cardinality drops path", &resources.MetricHTTP{IncreasedCardinality: ptr(false)}, "/v1.0/invoke/app2/method/orders/1", ""},
		{"pattern matched (low)", &resources.MetricHTTP{IncreasedCardinality: ptr(false), PathMatching: []string{"/v1.0/invoke/{app}/method/orders/{id}"}},
			"/v1.0/invoke/app2/method/orders/1", "/v1.0/invoke/{app}/method/orders/{id}"},
		{"pattern unmatched (low)", &resources.MetricHTTP{IncreasedCardinality: ptr(false), PathMatching: []string{"/orders/{id}"}},
			"/v1.0/invoke/app2/method/users/1", ""},
		{"pattern unmatched (high)", &resources.MetricHTTP{IncreasedCardinality: ptr(true), PathMatching: []string{"/orders/{id}"}},
			"/users/1", "/users/1"},
		{"root pattern catches the rest", &resources.MetricHTTP{IncreasedCardinality: ptr(false), PathMatching: []string{"/", "/orders/{id}"}},
			"/users/1", "/"},
		{"wildcard rest", &resources.MetricHTTP{IncreasedCardinality: ptr(false), PathMatching: []string{"/v1.0/state/{store}/{key...}"}},
			"/v1.0/state/s/a", "/v1.0/state/{store}/{key...}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := newMetrics(t, resources.MetricSpec{HTTP: c.http})
			if got := m.HTTPPathLabel(c.path); got != c.want {
				t.Fatalf("HTTPPathLabel(%q) = %q, want %q", c.path, got, c.want)
			}
		})
	}
}

func TestVerbs(t *testing.T) {
	m, reg := newMetrics(t, resources.MetricSpec{HTTP: &resources.MetricHTTP{IncreasedCardinality: ptr(false)}})
	m.RecordHTTPServer("BREW", "/x", 418, 0, 0, 0)
	if got := series(t, reg)["dapr_http_server_request_count{app_id=app1,method=UNKNOWN,path=,status=418}"]; got != 1 {
		t.Fatalf("unknown verb: %v", series(t, reg))
	}
	m2, reg2 := newMetrics(t, resources.MetricSpec{HTTP: &resources.MetricHTTP{ExcludeVerbs: ptr(true)}})
	m2.RecordHTTPServer("GET", "/x", 200, 0, 0, 0)
	if _, ok := series(t, reg2)["dapr_http_server_request_count{app_id=app1,method=,path=/x,status=200}"]; !ok {
		t.Fatalf("excludeVerbs: %v", series(t, reg2))
	}
	// Low cardinality has no response_count, as in daprd.
	for k := range series(t, reg) {
		if strings.HasPrefix(k, "dapr_http_server_response_count") {
			t.Fatalf("low cardinality registered %s", k)
		}
	}
}

func TestDisabledAndNilMetricsIgnoreCalls(t *testing.T) {
	m, reg := newMetrics(t, resources.MetricSpec{Enabled: ptr(false)})
	if m.Enabled() {
		t.Fatal("enabled")
	}
	m.RecordHTTPServer("GET", "/", 200, 0, 0, 0)
	m.SetGossipMembers(2)
	if mfs, _ := reg.Gather(); len(mfs) != 0 {
		t.Fatalf("disabled metrics registered %d metrics", len(mfs))
	}
	var nilM *telemetry.Metrics
	nilM.RecordGRPCServer("/x", codes.OK, 0)
	nilM.AddPluginRestart("p")
	if nilM.HTTPPathLabel("/x") != "" {
		t.Fatal("nil metrics labelled a path")
	}
}

func TestNewMetricsErrors(t *testing.T) {
	cases := []struct {
		name string
		spec resources.MetricSpec
		want string
	}{
		{"bad pattern", resources.MetricSpec{HTTP: &resources.MetricHTTP{PathMatching: []string{"/a/{x"}}}, "pathMatching"},
		{"relative pattern", resources.MetricSpec{HTTP: &resources.MetricHTTP{PathMatching: []string{"orders"}}}, "pathMatching"},
		{"conflicting patterns", resources.MetricSpec{HTTP: &resources.MetricHTTP{PathMatching: []string{"/a/{x}", "/a/{y}"}}}, "pathMatching"},
		{"unsorted buckets", resources.MetricSpec{LatencyDistributionBuckets: &[]int{10, 5}}, "latencyDistributionBuckets"},
	}
	for _, c := range cases {
		if _, err := telemetry.NewMetrics(prometheus.NewRegistry(), c.spec, "a", "", nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want mention of %q", c.name, err, c.want)
		}
	}
	if _, err := telemetry.NewMetrics(nil, resources.MetricSpec{}, "a", "", nil); err == nil {
		t.Error("nil registry accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := telemetry.NewMetrics(reg, resources.MetricSpec{}, "a", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := telemetry.NewMetrics(reg, resources.MetricSpec{}, "a", "", nil); err == nil || !strings.Contains(err.Error(), "register") {
		t.Errorf("second registration on one registry: %v", err)
	}
}

func BenchmarkRecordHTTPServer(b *testing.B) {
	m, err := telemetry.NewMetrics(prometheus.NewRegistry(), resources.MetricSpec{}, "app1", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.RecordHTTPServer("POST", "/v1.0/invoke/app2/method/orders", 200, 100, 100, time.Millisecond)
	}
}
