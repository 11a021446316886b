// Package jse2e is the end-to-end test of Outrigger with the official Dapr
// JavaScript SDK (@dapr/dapr, pinned in package.json). It holds no library
// code: js_test.go builds the outrigger binary, starts sidecars that find each
// other by gossip on a per-test port, and runs the Node scripts beside it:
//
//   - app.js: a DaprServer app (HTTP or gRPC) with one invocation handler,
//     POST /process, that answers with what it received;
//   - client.js: one DaprClient call (HTTP or gRPC): invoke or metadata.
//
// Data flow: client.js → sidecar A (HTTP or gRPC API) → gossip-resolved
// sidecar B or C → app.js behind it → back the same way; the Go test asserts
// on the one RESULT/ERROR line each script prints.
//
// The Node dependencies must be installed first (`npm ci` in proxy/e2e/js;
// `make test` does it); without them the test fails and says so.
package jse2e
