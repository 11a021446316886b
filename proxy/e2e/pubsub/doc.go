// Package pubsube2e holds end-to-end tests of the publish/subscribe
// building block with real processes: TestMain builds `outrigger` and the
// pubsub-sqlite and pubsub-redis plugins into a temporary directory in the
// release layout (<dir>/outrigger, <dir>/plugins/pubsub-<name>), and each
// test starts `outrigger sidecar` processes whose Component YAML points at
// one SQLite file shared by the test's sidecars or at the local Redis
// (127.0.0.1:6379, unique stream names per test).
//
// Data flow of a typical test: a plain HTTP client (or the official Go SDK)
// publishes through a publisher sidecar → broker plugin → subscriber
// sidecar(s) → the subscribing app, which is an HTTP server in the test
// process that records every CloudEvent it gets and answers as the test
// says (SUCCESS, RETRY, DROP, 404), or, where the app must be killed, a
// child process (the test binary re-executed in app mode) that appends each
// event id to a file before acknowledging it.
//
// Covered: CloudEvent fields, RETRY then SUCCESS, DROP and 404, dead-letter
// topics, an app killed mid-stream, a sidecar stopped or SIGKILLed and
// restarted (committed position kept), draining of an in-flight event at
// SIGTERM, competing consumers and fan-out, CEL routing, raw payloads, bulk
// publish, scoping errors, the Go SDK (PublishEvent, service/http
// AddTopicEventHandler, streaming Subscribe) and examples/ecommerce run
// with `outrigger run -f` and its load check (N=50) on pubsub.sqlite and
// pubsub.redis. PUBSUBE2E_LOGS=1 prints every process's output.
package pubsube2e
