// Package main is the pubsub.sqlite plugin: Outrigger's embedded default
// pub/sub broker, a durable log kept in one SQLite file (modernc.org/sqlite,
// pure Go, WAL journal) that several processes on one machine share.
//
// Data flow: Publish appends rows to the messages table (id AUTOINCREMENT =
// the log offset, topic, data, content type, metadata, publish time, TTL
// expiry). Each consumer group (component metadata consumerID) has a read
// position per topic in the groups table; a subscription claims messages in
// one BEGIN IMMEDIATE transaction, moving the read position on and writing
// a lease per message (leases table, lease_until = now + visibilityTimeout),
// so competing consumers in any process never get the same message twice.
// An ack deletes the lease; a nack, or a subscription that ends before the
// ack, makes the lease due at once; a lease that runs out (the consumer's
// process died) is claimed again: at-least-once delivery. Expired (TTL) and
// retired (retentionPeriod) messages are skipped and swept. Publishes, acks
// and nacks go through one writer goroutine that commits whatever is waiting
// in a single transaction (group commit).
//
// Subscriptions sleep until something changes: this process's own commits
// wake them directly, other processes' commits are noticed by polling
// PRAGMA data_version (a cheap query that changes when another connection
// commits) with backoff from 2 ms to 16 ms while anything is subscribed,
// and lease expiries wake them by timer. No hot loop, no polling when idle.
package main
