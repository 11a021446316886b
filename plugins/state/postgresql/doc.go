// Package main is the state.postgresql plugin binary: a Dapr-compatible state
// store on PostgreSQL (13 or later), served to the Outrigger host (or to
// daprd, through a unix socket) by plugins/sdk.
//
// Data flow: the host calls Init with the Component YAML metadata (parse in
// metadata.go), which opens a pgx pool, creates the tables if needed
// (serialised by an advisory lock) and starts the expiry sweeper; then
// Get/Set/Delete/Transact/Bulk*/Query arrive over gRPC, the SDK decodes them
// and Store (store.go) runs the SQL prepared in statements.go.
//
// Storage follows the layout of Dapr's state.postgresql v2 table: one row
// per key (key text, value bytea, isbinary, etag uuid, insertdate,
// updatedate, expiredate). Values are stored byte for byte; isbinary is false
// when the value is JSON that PostgreSQL can read as jsonb, and only those
// rows take part in queries, which cast value to jsonb as they run. The etag
// is a fresh UUID on every write. Etag checks and first-write are conditions
// in the UPDATE / INSERT … ON CONFLICT statements: zero rows affected means
// mismatch. Transactions and bulk writes are one database transaction sent
// as one batch. Rows past expiredate are never returned, and are deleted
// every cleanupInterval by whichever instance claims the sweep in the
// metadata table. Query (query.go) turns the Dapr query language (EQ, IN,
// AND, OR, sort, page limit/token) into jsonb SQL with every value and path
// passed as a parameter.
//
//	host ──gRPC──▶ sdk ──▶ Store ──pgx pool──▶ table (key, value bytea, isbinary, etag uuid, expiredate, …)
//	                        └─ cleanupLoop ──every cleanupInterval──▶ DELETE expired
package main
