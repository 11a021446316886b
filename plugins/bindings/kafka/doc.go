// Package main is the bindings.kafka plugin: an input and output binding on
// Apache Kafka with Dapr's bindings.kafka metadata names. The Kafka work
// (connection, metadata, produce, consumer groups with commits after the
// handler's ack) lives in plugins/internal/kafkaclient, shared with
// pubsub.kafka; this package maps the SDK's binding calls onto it.
//
// Data flow: the output side (Output) produces each create call's data to
// publishTopic (record key = request metadata partitionKey or key, the other
// request metadata as record headers) and returns once the brokers
// acknowledged it. The input side (Input) joins consumerGroup for the
// comma-separated topics on each Read stream and hands every partition's
// records to the SDK in offset order: the app's 2xx marks the offset for
// commit, a failure offers the same record again after a growing pause, and
// a record never acknowledged is never committed, so the group reads it
// again after the stream or the plugin ends (at-least-once).
package main
