// Package e2e holds end-to-end tests of the sidecar core: they build the
// outrigger binary once (TestMain), start real `outrigger sidecar` processes
// that find each other by zero-config gossip on a per-test port, put real
// HTTP and gRPC apps (servers inside the test process) behind them, and check
// what a Dapr user sees: service invocation over HTTP and gRPC, streaming of
// large bodies with bounded sidecar memory, load sharing and failover between
// instances of one app id, the API token, metadata, health and shutdown APIs,
// and the official Dapr Go SDK as a client and as an app.
//
// Data flow of a typical test: test client → sidecar A (HTTP or gRPC API) →
// gossip-resolved sidecar B (internal gRPC) → app B → back the same way.
package e2e
