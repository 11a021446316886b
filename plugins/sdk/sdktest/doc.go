// Package sdktest is the conformance kit for Outrigger plugins: go test
// helpers that check any component built on plugins/sdk against the
// contract Dapr and the Outrigger host rely on.
//
// Each Exercise function (ExerciseStateStore, ExercisePubSub,
// ExerciseInputBinding, ExerciseOutputBinding, ExerciseSecretStore,
// ExerciseConfigurationStore, ExerciseLock) serves the component through the
// SDK's real gRPC server on an in-process pair and drives it with the
// generated clients, so the wire mapping (etag errors, acks and nacks, missing
// keys, features) is exercised exactly as a host sees it. Each capability gets
// its own subtest; capabilities a component lacks must not be advertised.
package sdktest
