// Package statee2e holds end-to-end tests of the state building block and
// the plugin host: TestMain builds bin/outrigger and the state plugins
// (state-sqlite, state-redis, state-postgresql) into a temporary directory
// with the release layout (<dir>/outrigger, <dir>/plugins/state-<name>), and
// each test starts real `outrigger sidecar` processes whose Component YAML
// points at an SQLite file, the local Redis (127.0.0.1:6379) or the local
// PostgreSQL (127.0.0.1:5432).
//
// Data flow of a typical test: official Dapr Go SDK or plain HTTP client →
// sidecar API (HTTP or gRPC) → state block → plugin host → plugin process
// (go-plugin child, or a standalone process on a unix socket) → backend.
//
// Besides the API (CRUD, bulk, transactions, etags, TTL, query, the HTTP
// value rule and error codes), the tests check supervision (a plugin killed
// with SIGKILL under write load is restarted, calls fail fast meanwhile, no
// acknowledged write is lost), late socket plugins, metadata, and the errors
// for broken Component YAML.
package statee2e
