// Package blockse2e holds end-to-end tests of the secrets, configuration,
// distributed lock and bindings building blocks, and of the embedded
// defaults `outrigger init` writes.
//
// TestMain builds bin/outrigger and the plugins these blocks need
// (secretstores-local.file, state-sqlite, state-redis, pubsub-sqlite,
// configuration-redis, lock-redis, lock-sqlite, and bindings-cron /
// bindings-http once they exist) into a temporary directory with the release
// layout (<dir>/outrigger, <dir>/plugins/<kind>-<name>). Each test starts
// real `outrigger sidecar` processes on free loopback ports with a temporary
// OUTRIGGER_HOME and its own Component YAML, and waits for GET
// /v1.0/healthz to answer 204.
//
// Data flow of a typical test: the official Dapr Go SDK (gRPC) or a plain
// HTTP client → sidecar API → building block → plugin host → plugin process
// → backend (a JSON file, an SQLite file, the local Redis on 127.0.0.1:6379,
// or an httptest server). Calls the sidecar makes into the app
// (configuration pushes, input binding events) land on an HTTP test app the
// test runs in-process and whose port it passes as --app-port.
package blockse2e
