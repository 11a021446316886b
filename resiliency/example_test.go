package resiliency_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/resiliency"
)

// appError is how a caller hands an app's HTTP answer to the policy: the
// classifier reads HTTPStatus, the caller unwraps it after Execute.
type appError struct{ status int }

func (e *appError) Error() string   { return fmt.Sprintf("app answered %d", e.status) }
func (e *appError) HTTPStatus() int { return e.status }

func Example() {
	max := 3
	specs := []resources.Resiliency{{ // normally from resources.Load
		Name: "demo",
		Policies: resources.Policies{
			Timeouts:        map[string]string{"general": "2s"},
			Retries:         map[string]resources.Retry{"quick": {Duration: "10ms", MaxRetries: &max}},
			CircuitBreakers: map[string]resources.CircuitBreaker{"cb": {Timeout: "30s", Trip: "consecutiveFailures > 5"}},
		},
		Targets: resources.Targets{Apps: map[string]resources.EndpointPolicyNames{
			"orders": {PolicyNames: resources.PolicyNames{Timeout: "general", Retry: "quick", CircuitBreaker: "cb"}},
		}},
	}}
	p, err := resiliency.Build(specs, "checkout")
	if err != nil {
		fmt.Println(err)
		return
	}

	calls := 0
	pol := p.App("orders")
	err = pol.Execute(context.Background(), func(ctx context.Context) error {
		calls++ // pick an instance, send the request with ctx …
		if calls < 3 {
			return &appError{http.StatusServiceUnavailable}
		}
		return nil
	}, resiliency.Replayable(true)) // the body is buffered: safe to resend
	var ae *appError
	switch {
	case errors.Is(err, resiliency.ErrBreakerOpen):
		fmt.Println("breaker open") // map to Dapr's error
	case errors.As(err, &ae):
		fmt.Println("pass the app's answer through:", ae.status)
	case err != nil:
		fmt.Println("failed:", err)
	default:
		fmt.Printf("ok after %d calls\n", calls)
	}
	for _, b := range p.Snapshot() {
		fmt.Println(b.Target, b.Policy, b.State)
	}
	// Output:
	// ok after 3 calls
	// apps.orders cb closed
}
