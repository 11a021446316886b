// Package main is the pubsub.redis plugin: a Dapr-compatible pub/sub
// broker on Redis Streams (Redis 6.2 or later), with Dapr's metadata names.
//
// Data flow: a topic is a stream of the same name; Publish is one XADD of
// the fields data, contentType and metadata (Dapr's pubsub.redis writes
// data only, so either reads the other's streams), trimmed to about
// maxLenApprox entries when set. A subscription joins the consumer group
// consumerID (created at the start of the stream) under a consumer name
// unique to this plugin instance, replays the entries it left pending
// earlier, then blocks on XREADGROUP for new ones. Entries queue (queueDepth)
// for a pool of concurrency workers that call the handler; an ack is an
// XACK (batched), a nack leaves the entry pending. Every redeliverInterval
// the subscription claims entries pending longer than processingTimeout in
// any consumer of the group (XAUTOCLAIM), so messages held by a crashed or
// restarted consumer, or nacked, are delivered again: at-least-once.
package main
