// Package sdktest is the conformance kit for Outrigger plugins: go test
// helpers that check any component built on plugins/sdk against the
// contract Dapr and the Outrigger host rely on.
//
// ExerciseStateStore serves a store through the SDK's real gRPC server on an
// in-process bufconn pair and drives it with the generated
// dapr.proto.components.v1 clients, so the wire mapping (etag errors, missing
// keys, features) is exercised exactly as a host sees it. Each capability the
// store advertises gets its own subtest; capabilities it lacks must not be
// advertised.
package sdktest
