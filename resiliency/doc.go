// Package resiliency turns Dapr Resiliency manifests (kind: Resiliency,
// dapr.io/v1alpha1, parsed by proxy/resources) into the policies the
// sidecar applies around every call to a resolved target: an app it
// invokes, a component it calls, an actor, or the app it delivers a
// component's messages to.
//
// # Data flow
//
// Build validates and merges the manifests that apply to the app id into an
// immutable Provider: named timeouts, retries and circuit breakers (the trip
// expression compiled with CEL), targets, the Default…Policy fallbacks and
// Dapr's DaprBuiltIn…Retries. Every problem is an error naming file, line
// and field; the caller keeps its previous Provider then. On hot reload the
// caller builds a new Provider with Previous(old) and swaps the pointer;
// unchanged breakers, budgets and ejections keep their state.
//
// At call time the router, once it has resolved the target, asks the
// Provider for the target's Policy (App, ComponentOutbound,
// ComponentInbound, Actor, BuiltIn) and runs the call through
// Policy.Execute. Execute works as Dapr's policy runner does, innermost
// first: op → per-attempt timeout → circuit breaker (one per target; per
// actor type and/or id for actors) → retries with backoff. An open breaker
// answers at once with an error wrapping ErrBreakerOpen. A Classifier (by
// default DefaultClassify) tells transient errors (the target's fault:
// retried, and counted as breaker failures) from the others (returned at
// once, counted as the target answering). The caller says whether op can
// be replayed (Replayable), so a request body is never resent truncated.
//
// Load balancers use the Provider's Ejector to keep failing app instances
// out (Healthy, Report). Snapshot and the Observer interface feed the admin
// endpoint (/breakers) and the metrics exporter; this package has no
// Prometheus dependency.
//
// # Dapr semantics kept
//
//   - Durations are Go durations ("5s"); a bare integer is milliseconds.
//   - Retry policy constant (default; duration default 5s) or exponential
//     (500ms first, ×1.5 each time, each delay randomised ±50%, capped at
//     maxInterval, default 60s; duration is ignored). maxRetries -1 (the
//     default) retries until the caller's context ends; 0 never retries.
//   - Timeouts bound each attempt, not the whole Execute.
//   - Circuit breaker: maxRequests trial calls when half-open (default 1),
//     interval resets the closed-state counts (0 = never), timeout is how
//     long it stays open (default 60s), trip is a boolean CEL expression
//     over requests, totalSuccesses, totalFailures, consecutiveSuccesses and
//     consecutiveFailures (default "consecutiveFailures > 5").
//   - A target listed under spec.targets uses only what it names. Other
//     targets use Default<Kind><Policy>Policy, most specific first:
//     App; Actor; <Type>Component<Direction>, Component<Direction>,
//     Component (Type: Statestore, Pubsub, Binding, Secretstore,
//     Configuration, Lock, Crypto); then Default<Policy>Policy.
//   - App calls without an app target and without a default retry policy
//     get DaprBuiltInServiceRetries (3 × 1s, only on gRPC Unavailable or
//     Unauthenticated). Built-in retry policies may be overridden by name
//     but not weakened below 3 retries; DaprBuiltInActorNotFoundRetries
//     cannot be overridden.
//   - Actor breakers: circuitBreakerScope type, id (an LRU of
//     circuitBreakerCacheSize ids, default 5000) or both (both must allow
//     the call).
//
// Outrigger's differences: one breaker per app (Dapr keys them by app and
// method) and separate breakers per component direction; default retries
// replace the built-in service retries instead of nesting with them; an
// unknown policy name or a trip expression that does not compile is an
// error (Dapr ignores the first and fails later on the second); client
// errors (4xx, gRPC InvalidArgument/NotFound/FailedPrecondition…) are not
// retried and do not trip breakers under DefaultClassify.
//
// # Outrigger extensions
//
// Ignored by Dapr (whose loader drops unknown fields), loaded by
// proxy/resources as typed fields:
//
//	spec:
//	  policies:
//	    retries:
//	      important:
//	        policy: constant
//	        duration: 1s
//	        maxRetries: 5
//	        matching:                      # Dapr 1.15 syntax
//	          httpStatusCodes: "429,500-599"   # 100-599
//	          gRPCStatusCodes: "1-4,8,14"      # 0-16
//	        budget:
//	          percent: 20                  # default 20
//	          minRetriesPerSecond: 3       # default 3
//	    outlierDetections:
//	      ejectBad:
//	        consecutiveFailures: 5         # default 5
//	        baseEjectionTime: 30s          # default 30s
//	        maxEjectionTime: 5m            # default 300s
//	        maxEjectionPercent: 50         # default 50
//	  targets:
//	    apps:
//	      appB: { retry: important, outlierDetection: ejectBad }
//
// matching: when set for the error's protocol (an HTTP status from the
// classifier, else a gRPC code), the list alone decides whether it is
// retried; errors with neither fall back to the classifier.
//
// budget: per target, retries in any 10-second window may be at most
// percent % of the requests (first attempts) started in it plus
// minRetriesPerSecond × 10, so a failing target sees at most
// (1 + percent/100) × its normal load plus that trickle, however many
// retries the policy allows. When the budget is spent the last error is
// returned and Observer.BudgetExhausted is called.
//
// outlierDetection (apps only; also DefaultAppOutlierDetectionPolicy and
// DefaultOutlierDetectionPolicy): see Ejector.
package resiliency
