package resiliency

import (
	"context"
	"testing"

	"github.com/outrigger/outrigger/proxy/resources"
)

// BenchmarkExecute measures the policy chain on the success path, the cost
// every call pays.
func BenchmarkExecute(b *testing.B) {
	p, err := Build(inline(resources.Policies{
		Timeouts:        map[string]string{"t": "5s"},
		Retries:         map[string]resources.Retry{"r": {Duration: "1s", MaxRetries: intp(3)}},
		CircuitBreakers: map[string]resources.CircuitBreaker{"cb": {}},
	}, resources.Targets{Apps: map[string]resources.EndpointPolicyNames{
		"full": {PolicyNames: resources.PolicyNames{Timeout: "t", Retry: "r", CircuitBreaker: "cb"}},
	}}), "a")
	if err != nil {
		b.Fatal(err)
	}
	ok := func(context.Context) error { return nil }
	ctx := context.Background()
	for _, app := range []string{"full", "defaulted"} {
		b.Run(app, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.App(app).Execute(ctx, ok); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
