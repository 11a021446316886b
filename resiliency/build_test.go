package resiliency

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/resources"
)

func TestBuildValidFixture(t *testing.T) {
	p, err := Build(load(t, "valid", "app1"), "app1")
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	type want struct {
		timeout    time.Duration
		retry      string // policy name, "" = none
		maxRetries int
		breaker    string
		resiliency string
	}
	tests := []struct {
		name string
		pol  Policy
		want want
	}{
		{"explicit app", p.App("appB"), want{5 * time.Second, "important", 10, "simpleCB", "myresiliency"}},
		{"app with extensions", p.App("appC"), want{0, "budgeted", 3, "", "myresiliency"}},
		{"other app: default timeout, built-in retries raised to 3", p.App("appZ"),
			want{30 * time.Second, BuiltInServiceRetries, 3, "", "myresiliency"}},
		{"explicit component outbound", p.ComponentOutbound("statestore", "state"),
			want{0, "retryForever", -1, "simpleCB", "myresiliency"}},
		{"explicit component without inbound: nothing", p.ComponentInbound("statestore", "state"),
			want{0, "", 0, "", "myresiliency"}},
		{"inbound with bare-integer timeout", p.ComponentInbound("pubsub", "pubsub"),
			want{250 * time.Millisecond, "important", 10, "", "myresiliency"}},
		{"statestore default beats component default", p.ComponentOutbound("other-store", "state"),
			want{30 * time.Second, "DefaultStatestoreComponentOutboundRetryPolicy", 2, "", "myresiliency"}},
		{"Dapr type names accepted", p.ComponentOutbound("other-store", "Statestore"),
			want{30 * time.Second, "DefaultStatestoreComponentOutboundRetryPolicy", 2, "", "myresiliency"}},
		{"pubsub falls back to component default", p.ComponentOutbound("other-pubsub", "pubsub"),
			want{30 * time.Second, "DefaultComponentRetryPolicy", 4, "", "myresiliency"}},
		{"explicit actor", p.Actor("myActorType", "42"), want{5 * time.Second, "important", 10, "simpleCB", "myresiliency"}},
		{"other actor: defaults", p.Actor("otherActor", "1"), want{30 * time.Second, "", 0, "", "myresiliency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.pol.def
			got := want{timeout: d.timeout, resiliency: tt.pol.Target().Resiliency}
			if d.retry != nil {
				got.retry, got.maxRetries = d.retry.name, d.retry.maxRetries
			}
			if d.breaker != nil {
				got.breaker = d.breaker.name
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}

	c := p.App("appC").def
	if r := c.retry; !r.match.http.has(503) || r.match.http.has(404) || !r.match.grpc.has(14) || r.match.grpc.has(2) {
		t.Errorf("matching not read from the file: %+v", r.match)
	}
	if b := c.retry.budget; b == nil || *b != (budgetSpec{percent: 20, minPerSecond: 3}) {
		t.Errorf("budget = %+v, want 20%% / 3 per second", b)
	}
	if o := c.outlier; o == nil || o.consecutiveFailures != 3 || o.baseEjection != 10*time.Second ||
		o.maxEjection != defaultMaxEjection || o.maxPercent != 50 {
		t.Errorf("outlier detection = %+v", o)
	}
	if a := p.Actor("myActorType", "x").def; a.scope != "both" || a.cacheSize != 5000 {
		t.Errorf("actor scope/cache = %q/%d", a.scope, a.cacheSize)
	}
	if got := p.ComponentOutbound("statestore", "state").Target(); got.String() != "components.statestore.outbound" ||
		got.MetricLabel() != "statestore_statestore" {
		t.Errorf("component target = %q / %q", got.String(), got.MetricLabel())
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		dir  string
		want []string // each must appear in the error
	}{
		{"unknown-policy", []string{`resiliency.yaml:1: targets.apps.b.retry: unknown policy "x" (defined: `, "important"}},
		{"bad-duration", []string{`resiliency.yaml:1: policies.timeouts.general: "5 parsecs" is not a duration`}},
		{"cel-syntax", []string{"policies.circuitBreakers.cb.trip: ", "does not compile"}},
		{"cel-not-bool", []string{"policies.circuitBreakers.cb.trip: ", "is int, not bool"}},
		{"cel-unknown-var", []string{"policies.circuitBreakers.cb.trip: ", "undeclared reference to 'failures'"}},
		{"bad-scope", []string{`targets.actors.T.circuitBreakerScope: "instance" is not id, type or both`}},
		{"missing-scope", []string{"targets.actors.T.circuitBreakerScope: required with a circuitBreaker"}},
		{"bad-matching", []string{`policies.retries.r.matching.httpStatusCodes: "500-600": "500-600" is outside 100-599`}},
		{"bad-budget", []string{"policies.retries.r.budget.percent: -5 is negative"}},
		{"unknown-outlier", []string{`targets.apps.b.outlierDetection: unknown policy "nope" (none defined)`}},
		{"bad-policy", []string{`policies.retries.r.policy: "linear" is neither constant nor exponential`}},
		{"two-errors", []string{`policies.timeouts.t: "soon"`, `targets.components.statestore.outbound.circuitBreaker: unknown policy "missing"`}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			specs := load(t, filepath.Join("invalid", tt.dir), "app1")
			p, err := Build(specs, "app1")
			if err == nil {
				t.Fatalf("Build succeeded (%v), want an error", p)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), filepath.Join("testdata", "invalid", tt.dir, "resiliency.yaml")) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestBuildScopesAndMerge(t *testing.T) {
	specs := []resources.Resiliency{
		{Name: "a", Policies: resources.Policies{Retries: map[string]resources.Retry{
			"DefaultRetryPolicy": {MaxRetries: intp(1)}, "shared": {MaxRetries: intp(2)},
		}}},
		{Name: "b", Scopes: []string{"other"}, Policies: resources.Policies{Retries: map[string]resources.Retry{
			"DefaultRetryPolicy": {MaxRetries: intp(99)},
		}}},
		// a later manifest overrides a policy and may use another's
		{Name: "c", Policies: resources.Policies{Retries: map[string]resources.Retry{"shared": {MaxRetries: intp(7)}}},
			Targets: resources.Targets{Apps: map[string]resources.EndpointPolicyNames{
				"x": {PolicyNames: resources.PolicyNames{Retry: "DefaultRetryPolicy"}},
				"y": {PolicyNames: resources.PolicyNames{Retry: "shared"}},
			}}},
	}
	p, err := Build(specs, "me")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.App("x").def.retry.maxRetries; got != 1 {
		t.Errorf("manifest scoped to another app applied: maxRetries %d", got)
	}
	if got := p.App("y").def.retry.maxRetries; got != 7 {
		t.Errorf("later manifest did not override: maxRetries %d", got)
	}
	if got := p.App("y").Target().Resiliency; got != "c" {
		t.Errorf("target resiliency = %q", got)
	}
}

func TestBuildInMemoryErrorNamesManifest(t *testing.T) {
	_, err := Build(inline(resources.Policies{}, resources.Targets{Apps: map[string]resources.EndpointPolicyNames{
		"b": {PolicyNames: resources.PolicyNames{Timeout: "t"}},
	}}), "a")
	if err == nil || err.Error() != `Resiliency "inline": targets.apps.b.timeout: unknown policy "t" (none defined)` {
		t.Fatalf("err = %v", err)
	}
}

func TestBuiltInPolicies(t *testing.T) {
	p, err := Build(inline(resources.Policies{Retries: map[string]resources.Retry{
		BuiltInActorNotFoundRetries: {MaxRetries: intp(0)}, // protected: ignored
		BuiltInActorRetries:         {MaxRetries: intp(-1)},
	}}, resources.Targets{}), "a")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		maxRetries int
		exp        bool
	}{
		{BuiltInServiceRetries, 3, false},
		{BuiltInActorRetries, -1, false}, // forever is not weaker
		{BuiltInActorNotFoundRetries, 5, false},
		{BuiltInActorReminderRetries, 20, true},
		{BuiltInInitializationRetries, 3, true},
	}
	for _, tt := range tests {
		r := p.BuiltIn(tt.name).def.retry
		if r.maxRetries != tt.maxRetries || r.exponential != tt.exp {
			t.Errorf("%s: maxRetries %d exponential %v, want %d %v", tt.name, r.maxRetries, r.exponential, tt.maxRetries, tt.exp)
		}
	}
	if p.BuiltIn("nope").def != nil {
		t.Error("unknown built-in name gave a policy")
	}
}

func TestParseCodes(t *testing.T) {
	tests := []struct {
		in      string
		has     []int
		hasNot  []int
		wantErr string
	}{
		{in: "429,500-599", has: []int{429, 500, 503, 599}, hasNot: []int{404, 428, 600}},
		{in: " 503 , 504 ", has: []int{503, 504}, hasNot: []int{500}},
		{in: "", hasNot: []int{500}},
		{in: "5xx", wantErr: `"5xx" is not a code`},
		{in: "599-500", wantErr: "reversed"},
		{in: "500,,501", wantErr: "empty item"},
		{in: "99", wantErr: "outside 100-599"},
	}
	for _, tt := range tests {
		s, err := parseCodes(tt.in, 100, 599)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseCodes(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseCodes(%q): %v", tt.in, err)
		}
		for _, c := range tt.has {
			if !s.has(c) {
				t.Errorf("parseCodes(%q) lacks %d", tt.in, c)
			}
		}
		for _, c := range tt.hasNot {
			if s.has(c) {
				t.Errorf("parseCodes(%q) has %d", tt.in, c)
			}
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"5s", 5 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{"250", 250 * time.Millisecond, false},
		{"0", 0, false},
		{"-1s", 0, true},
		{"-5", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestNilProviderAndZeroPolicy(t *testing.T) {
	var p *Provider
	c := &counter{errs: []error{errors.New("boom")}}
	if err := p.App("x").Execute(t.Context(), c.op); err == nil || c.n() != 1 {
		t.Errorf("zero policy: err %v after %d calls, want the op's error after 1", err, c.n())
	}
	if p.Snapshot() != nil || p.Ejector().Healthy("x", []string{"a"})[0] != "a" {
		t.Error("nil provider should have no breakers and eject nothing")
	}
	p.Ejector().Report("x", "a", false) // no panic
}
