package resiliency

import (
	"strings"
	"testing"

	"github.com/outrigger/outrigger/proxy/resources"
)

// Extensions come from proxy/resources' typed fields, so manifests built in
// memory (no file) get them too.
func TestExtensionsFromTypedFields(t *testing.T) {
	three, fifty := 3, 50.0
	pol := resources.Policies{
		Retries: map[string]resources.Retry{"r": {MaxRetries: intp(5),
			Matching: &resources.RetryMatching{HTTPStatusCodes: "503"}}},
		OutlierDetections: map[string]resources.OutlierDetection{"od": {ConsecutiveFailures: &three,
			BaseEjectionTime: "30s", MaxEjectionPercent: &fifty}},
	}
	tg := resources.Targets{Apps: map[string]resources.EndpointPolicyNames{
		"b": {PolicyNames: resources.PolicyNames{Retry: "r"}, OutlierDetection: "od"}}}
	p, err := Build(inline(pol, tg), "a")
	if err != nil {
		t.Fatal(err)
	}
	ej := p.Ejector()
	for range 3 {
		ej.Healthy("b", []string{"i1", "i2"})
		ej.Report("b", "i1", false)
	}
	if got := ej.Healthy("b", []string{"i1", "i2"}); len(got) != 1 || got[0] != "i2" {
		t.Errorf("after 3 failures of i1 under outlierDetection od: healthy %v, want [i2]", got)
	}

	// matching: a 500 is not in "503", so it is not retried.
	c := &counter{errs: repeat(httpErr(500), 10)}
	_ = p.App("b").Execute(t.Context(), c.op)
	if c.n() != 1 {
		t.Errorf("a 500 under matching.httpStatusCodes 503 was tried %d times, want 1", c.n())
	}

	// Bad extension values are errors naming the field.
	pol.OutlierDetections["od"] = resources.OutlierDetection{BaseEjectionTime: "soon"}
	_, err = Build(inline(pol, tg), "a")
	if err == nil || !strings.Contains(err.Error(), "policies.outlierDetections.od.baseEjectionTime") {
		t.Errorf("bad baseEjectionTime: err %v, want one naming policies.outlierDetections.od.baseEjectionTime", err)
	}
}
