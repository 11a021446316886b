package resiliency

import (
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/sony/gobreaker/v2"
)

// DefaultTrip is the trip expression of a circuit breaker that sets none
// (gobreaker's and Dapr's default).
const DefaultTrip = "consecutiveFailures > 5"

// tripCompiler compiles circuit breaker trip expressions. One CEL
// environment serves a whole Build.
type tripCompiler struct{ env *cel.Env }

func newTripCompiler() (*tripCompiler, error) {
	env, err := cel.NewEnv(
		cel.Variable("requests", cel.IntType),
		cel.Variable("totalSuccesses", cel.IntType),
		cel.Variable("totalFailures", cel.IntType),
		cel.Variable("consecutiveSuccesses", cel.IntType),
		cel.Variable("consecutiveFailures", cel.IntType),
		// Dapr declares the counters dynamically, so "> 5.0" works there.
		cel.CrossTypeNumericComparisons(true),
	)
	if err != nil {
		return nil, fmt.Errorf("trip expression environment: %w", err)
	}
	return &tripCompiler{env: env}, nil
}

// compile type-checks expr and returns gobreaker's ReadyToTrip for it. The
// expression must be boolean; an evaluation error (division by zero, …)
// does not trip.
func (c *tripCompiler) compile(expr string) (func(gobreaker.Counts) bool, error) {
	ast, iss := c.env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("trip expression %q does not compile: %w", expr, iss.Err())
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("trip expression %q is %s, not bool", expr, ast.OutputType())
	}
	prg, err := c.env.Program(ast)
	if err != nil {
		return nil, fmt.Errorf("trip expression %q: %w", expr, err)
	}
	return func(counts gobreaker.Counts) bool {
		out, _, err := prg.Eval(map[string]any{
			"requests":             int64(counts.Requests),
			"totalSuccesses":       int64(counts.TotalSuccesses),
			"totalFailures":        int64(counts.TotalFailures),
			"consecutiveSuccesses": int64(counts.ConsecutiveSuccesses),
			"consecutiveFailures":  int64(counts.ConsecutiveFailures),
		})
		if err != nil {
			return false
		}
		b, ok := out.Value().(bool)
		return ok && b
	}, nil
}
