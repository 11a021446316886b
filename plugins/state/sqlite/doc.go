// Package main is the state.sqlite plugin: a Dapr-compatible state store
// kept in one SQLite file (modernc.org/sqlite, pure Go), safe to share
// between several processes on one machine.
//
// Data flow: the SDK (plugins/sdk) receives the host's gRPC calls and hands
// plain requests to Store. Store turns each into one SQL statement, or into
// one BEGIN IMMEDIATE transaction for Transact and bulk writes, against the
// state table (key, value, is_json, etag, expires_at, updated_at). Etags are
// random and opaque; every etag check is part of the same statement's WHERE
// clause so concurrent writers cannot interleave. Expired rows are filtered
// out by every read and removed periodically (cleanupInterval), coordinated
// between processes through the metadata table. Queries compile the Dapr
// filter (EQ, IN, AND, OR), sorting and paging into SQL using SQLite's JSON
// functions over rows whose value is JSON.
package main
