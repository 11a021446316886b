package resources

import (
	"context"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func names(cs []Component) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func warningStrings(ws []Warning) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		dir  string
		want []string // substrings of the error
	}{
		{"badyaml", []string{filepath.Join("testdata", "badyaml", "c.yaml"), "invalid YAML", "line 7"}},
		{"noname", []string{filepath.Join("testdata", "noname", "c.yaml") + ":1", "without metadata.name"}},
		{"notype", []string{filepath.Join("testdata", "notype", "c.yaml") + ":1", `"statestore" without spec.type`}},
		{"duplicate", []string{filepath.Join("testdata", "duplicate", "b.yaml") + ":2", `duplicate Component name "statestore"`,
			filepath.Join("testdata", "duplicate", "a.yaml") + ":1"}},
		{"badtimeout", []string{"c.yaml:1", `spec.initTimeout "soon"`}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			set, err := Load(context.Background(), []string{filepath.Join("testdata", tt.dir)}, "app1", nil)
			if err == nil {
				t.Fatalf("Load succeeded with %d components, want an error", len(set.Components))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadWarnings(t *testing.T) {
	tests := []struct {
		dir      string
		wantWarn []string // regexps, in order
		wantComp []string
	}{
		{
			dir: "unknownfield",
			wantWarn: []string{
				`c\.yaml:7: unknown field "spec\.colour" in Component "statestore" ignored`,
				`c\.yaml:11: unknown field "spec\.metadata\[0\]\.valu" in Component "statestore" ignored`,
			},
			wantComp: []string{"statestore"},
		},
		{
			dir: "unknownkind",
			wantWarn: []string{
				`c\.yaml:1: kind "Deployment" \(apps/v1\) not handled; ignored`,
				`c\.yaml:6: Configuration "daprConfig" in a resources path ignored: pass it with --config`,
				`c\.yaml:11: Component "wrongversion" has apiVersion "dapr.io/v2alpha1", want dapr.io/v1alpha1; ignored`,
			},
			wantComp: []string{"kept"},
		},
		{
			dir:      "does-not-exist",
			wantWarn: []string{`does-not-exist: resources path does not exist`},
			wantComp: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			set, err := Load(context.Background(), []string{filepath.Join("testdata", tt.dir)}, "app1", nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := warningStrings(set.Warnings)
			if len(got) != len(tt.wantWarn) {
				t.Fatalf("warnings = %q, want %d matching %q", got, len(tt.wantWarn), tt.wantWarn)
			}
			for i, re := range tt.wantWarn {
				if !regexp.MustCompile(re).MatchString(got[i]) {
					t.Errorf("warning %d = %q, want match for %s", i, got[i], re)
				}
			}
			if n := names(set.Components); !slices.Equal(n, tt.wantComp) {
				t.Errorf("components = %q, want %q", n, tt.wantComp)
			}
		})
	}
}

func TestLoadValid(t *testing.T) {
	dir := filepath.Join("testdata", "valid")
	set, err := Load(context.Background(), []string{dir}, "checkout", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(set.Warnings) != 0 {
		t.Errorf("unexpected warnings: %q", warningStrings(set.Warnings))
	}
	wantComps := []Component{
		{
			Name: "statestore", Namespace: "default", Type: "state.redis", Version: "v1",
			InitTimeout: 2 * time.Second, IgnoreErrors: true,
			Metadata: []MetadataItem{
				{Name: "redisHost", Value: "localhost:6379"},
				{Name: "redisPassword", SecretKeyRef: &SecretKeyRef{Name: "redis-secret", Key: "password"}},
				{Name: "actorStateStore", Value: "true"},
				{Name: "maxRetries", Value: "3"},
			},
			AuthSecretStore: "localsecretstore",
			File:            filepath.Join(dir, "components.yaml"), Line: 2,
		},
		{
			Name: "pubsub", Type: "pubsub.redis", Version: "v1", InitTimeout: DefaultInitTimeout,
			Metadata: []MetadataItem{{Name: "redisHost", Value: "localhost:6379"}},
			File:     filepath.Join(dir, "components.yaml"), Line: 26,
		},
	}
	if !reflect.DeepEqual(set.Components, wantComps) {
		t.Errorf("components =\n%+v\nwant\n%+v", set.Components, wantComps)
	}
	c := set.Components[0]
	if c.Category() != "state" || c.Impl() != "redis" {
		t.Errorf("Category/Impl = %q/%q", c.Category(), c.Impl())
	}
	if p := c.Properties(); p["redisHost"] != "localhost:6379" || p["actorStateStore"] != "true" || len(p) != 4 {
		t.Errorf("Properties = %v", p)
	}

	wantSubs := []Subscription{
		{
			Name: "order-sub", APIVersion: "dapr.io/v1alpha1", PubsubName: "pubsub", Topic: "orders",
			Route: "/orders", Routes: Routes{Default: "/orders"}, DeadLetterTopic: "orders-dlq",
			Metadata:      map[string]string{"rawPayload": "false"},
			BulkSubscribe: BulkSubscribe{Enabled: true, MaxMessagesCount: 100, MaxAwaitDurationMs: 40},
			Scopes:        []string{"checkout"}, File: filepath.Join(dir, "subscriptions.yml"), Line: 1,
		},
		{
			Name: "order-sub-v2", APIVersion: "dapr.io/v2alpha1", PubsubName: "pubsub", Topic: "orders",
			Routes: Routes{Rules: []Rule{{Match: `event.type == "order.created"`, Path: "/orders/created"}}, Default: "/orders"},
			File:   filepath.Join(dir, "subscriptions.yml"), Line: 18,
		},
	}
	if !reflect.DeepEqual(set.Subscriptions, wantSubs) {
		t.Errorf("subscriptions =\n%+v\nwant\n%+v", set.Subscriptions, wantSubs)
	}

	ten := 10
	wantRes := []Resiliency{{
		Name: "myresiliency",
		Policies: Policies{
			Timeouts:        map[string]string{"general": "5s"},
			Retries:         map[string]Retry{"important": {Policy: "constant", Duration: "5s", MaxRetries: &ten}},
			CircuitBreakers: map[string]CircuitBreaker{"simpleCB": {MaxRequests: 1, Interval: "8s", Timeout: "45s", Trip: "consecutiveFailures > 8"}},
		},
		Targets: Targets{
			Apps:       map[string]EndpointPolicyNames{"appB": {PolicyNames: PolicyNames{"general", "important", "simpleCB"}, CircuitBreakerCacheSize: 100}},
			Actors:     map[string]ActorPolicyNames{"myActor": {PolicyNames: PolicyNames{Timeout: "general"}, CircuitBreakerScope: "both"}},
			Components: map[string]ComponentPolicyNames{"statestore": {Outbound: PolicyNames{Retry: "important", CircuitBreaker: "simpleCB"}}},
		},
		File: filepath.Join(dir, "resiliency.yaml"), Line: 1,
	}}
	if !reflect.DeepEqual(set.Resiliencies, wantRes) {
		t.Errorf("resiliencies =\n%+v\nwant\n%+v", set.Resiliencies, wantRes)
	}

	wantEP := []HTTPEndpoint{{
		Name: "external", BaseURL: "https://api.example.com",
		Headers:   []MetadataItem{{Name: "Accept", Value: "application/json"}},
		ClientTLS: &ClientTLS{RootCA: &TLSDocument{Value: "PEM"}},
		File:      filepath.Join(dir, "resiliency.yaml"), Line: 21,
	}}
	if !reflect.DeepEqual(set.HTTPEndpoints, wantEP) {
		t.Errorf("http endpoints =\n%+v\nwant\n%+v", set.HTTPEndpoints, wantEP)
	}
}

func TestLoadScopesAndNamespace(t *testing.T) {
	dir := filepath.Join("testdata", "scopes")
	tests := []struct {
		appID, namespace string
		want             []string
	}{
		{"app1", "", []string{"mine", "everyone", "otherns", "theirs"}},
		{"app2", "", []string{"mine", "everyone", "otherns"}},
		{"app3", "", []string{"theirs", "everyone", "otherns"}},
		{"app1", "default", []string{"mine", "everyone", "theirs"}},
		{"app1", "production", []string{"mine", "everyone", "otherns", "theirs"}},
	}
	for _, tt := range tests {
		t.Run(tt.appID+"/"+tt.namespace, func(t *testing.T) {
			t.Setenv("NAMESPACE", tt.namespace)
			set, err := Load(context.Background(), []string{dir}, tt.appID, nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := names(set.Components); !slices.Equal(got, tt.want) {
				t.Errorf("components = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadTemplatesAndEnvRef(t *testing.T) {
	dir := filepath.Join("testdata", "templates")
	t.Setenv("NAMESPACE", "prod")
	t.Setenv("POD_NAME", "pod-7")
	t.Setenv("OUTRIGGER_TEST_VALUE", "from-env")
	t.Setenv("DAPR_API_TOKEN", "secret")
	set, err := Load(context.Background(), []string{dir}, "orders", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	p := set.Components[0].Properties()
	if !regexp.MustCompile(`^orders-[0-9a-f]{8}-[0-9a-f]{4}-`).MatchString(p["consumerID"]) {
		t.Errorf("consumerID = %q, want orders-<uuid>", p["consumerID"])
	}
	want := map[string]string{"ns": "prod.orders", "pod": "pod-7", "fromEnv": "from-env", "forbidden": ""}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %q, want %q", k, p[k], v)
		}
	}
	if len(set.Warnings) != 1 || !strings.Contains(set.Warnings[0].Message, `envRef "DAPR_API_TOKEN" not allowed`) {
		t.Errorf("warnings = %q, want one about DAPR_API_TOKEN", warningStrings(set.Warnings))
	}

	t.Setenv("POD_NAME", "")
	if _, err := Load(context.Background(), []string{dir}, "orders", nil); err == nil ||
		!strings.Contains(err.Error(), "{podName}") || !strings.Contains(err.Error(), "c.yaml:1") {
		t.Errorf("Load without POD_NAME: err = %v, want one naming {podName} and the file", err)
	}
}

func TestLoadSeveralDirs(t *testing.T) {
	set, err := Load(context.Background(),
		[]string{filepath.Join("testdata", "valid"), filepath.Join("testdata", "unknownkind")}, "checkout", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := names(set.Components), []string{"statestore", "pubsub", "kept"}; !slices.Equal(got, want) {
		t.Errorf("components = %q, want %q", got, want)
	}
}

func TestLoadCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, []string{filepath.Join("testdata", "valid")}, "a", nil); err == nil {
		t.Fatal("Load with a canceled context succeeded")
	}
}

func TestLoadConfiguration(t *testing.T) {
	path := filepath.Join("testdata", "config", "config.yaml")
	cfg, err := LoadConfiguration(path)
	if err != nil {
		t.Fatalf("LoadConfiguration: %v", err)
	}
	if cfg.Name != "daprConfig" || cfg.Spec.Tracing == nil || cfg.Spec.Tracing.SamplingRate != "1" ||
		cfg.Spec.Tracing.Zipkin.EndpointAddress != "http://localhost:9411/api/v2/spans" {
		t.Errorf("tracing = %+v", cfg.Spec.Tracing)
	}
	if cfg.Spec.Metrics == nil || cfg.Spec.Metrics.Enabled == nil || *cfg.Spec.Metrics.Enabled {
		t.Errorf("metrics (from legacy 'metric' key) = %+v, want enabled=false", cfg.Spec.Metrics)
	}
	if len(cfg.Spec.Features) != 1 || cfg.Spec.Features[0].Name != "SchedulerReminders" {
		t.Errorf("features = %+v", cfg.Spec.Features)
	}
	if cfg.Spec.API == nil || len(cfg.Spec.API.Allowed) != 1 || cfg.Spec.API.Allowed[0] != (APIAccessRule{"state", "v1.0", "http"}) {
		t.Errorf("api = %+v", cfg.Spec.API)
	}
	if ac := cfg.Spec.AccessControl; ac == nil || ac.DefaultAction != "deny" || ac.AppPolicies[0].AppID != "app1" ||
		ac.AppPolicies[0].Operations[0].HTTPVerb[0] != "POST" {
		t.Errorf("accessControl = %+v", cfg.Spec.AccessControl)
	}
	if got := warningStrings(cfg.Warnings); len(got) != 1 || !strings.Contains(got[0], `config.yaml:24: unknown field "spec.unknownThing"`) {
		t.Errorf("warnings = %q", got)
	}

	for _, bad := range []string{"", filepath.Join("testdata", "nope.yaml"), filepath.Join("testdata", "valid", "components.yaml"),
		filepath.Join("testdata", "badyaml", "c.yaml")} {
		if _, err := LoadConfiguration(bad); err == nil {
			t.Errorf("LoadConfiguration(%q) succeeded, want an error", bad)
		}
	}
}

func TestLoadResiliencyExtensions(t *testing.T) {
	set, err := Load(t.Context(), []string{filepath.Join("testdata", "resiliency-extensions")}, "appA", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Warnings) > 0 {
		t.Errorf("Outrigger's resiliency extensions reported as unknown: %v", warningStrings(set.Warnings))
	}
	if len(set.Resiliencies) != 1 {
		t.Fatalf("resiliencies = %+v, want one", set.Resiliencies)
	}
	r := set.Resiliencies[0]
	five, one, twenty, three, fifty := 5, 1, 20.0, 3.0, 50.0
	wantPol := Policies{
		Retries: map[string]Retry{
			"budgeted": {Policy: "constant", Duration: "1s", MaxRetries: &five,
				Matching: &RetryMatching{HTTPStatusCodes: "503", GRPCStatusCodes: "1-4,14"},
				Budget:   &RetryBudget{Percent: &twenty, MinRetriesPerSecond: &three}},
			"plain": {MaxRetries: &one},
		},
		OutlierDetections: map[string]OutlierDetection{"ejectBad": {ConsecutiveFailures: &five,
			BaseEjectionTime: "30s", MaxEjectionTime: "300", MaxEjectionPercent: &fifty}},
	}
	if !reflect.DeepEqual(r.Policies, wantPol) {
		t.Errorf("policies =\n%+v\nwant\n%+v", r.Policies, wantPol)
	}
	wantApp := EndpointPolicyNames{PolicyNames: PolicyNames{Retry: "budgeted"}, OutlierDetection: "ejectBad"}
	if got := r.Targets.Apps["appB"]; got != wantApp {
		t.Errorf("targets.apps.appB = %+v, want %+v", got, wantApp)
	}
}
