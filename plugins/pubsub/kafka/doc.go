// Package main is the pubsub.kafka plugin: a Dapr-compatible pub/sub broker
// on Apache Kafka (franz-go), with Dapr's metadata names. The Kafka work
// (connection, metadata, produce, consumer groups) lives in
// plugins/internal/kafkaclient, shared with bindings.kafka; this package
// maps the SDK's PubSub calls onto it.
//
// Data flow: Publish produces one record to the topic (key = metadata
// partitionKey, headers = the other request metadata, content type in a
// header) and returns once the brokers acknowledged it. Subscribe joins the
// consumer group consumerGroup (default: consumerID, i.e. the app id) for
// the topic and hands each partition's records to the SDK's handler in
// offset order; an ack marks the offset for commit, a nack offers the same
// record again after a growing pause (the partition waits: Kafka has no
// per-message nack), and a record never acknowledged is never committed,
// so the group reads it again after a restart or rebalance.
package main
