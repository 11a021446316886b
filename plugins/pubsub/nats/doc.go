// Package main is the pubsub.nats plugin: a Dapr-compatible pub/sub broker
// on NATS JetStream (nats.go jetstream package) with the metadata names of
// Dapr's pubsub.jetstream.
//
// Data flow: a topic is a subject. Publish sends it to JetStream and waits
// for the stream's ack (content type and request metadata as headers).
// Subscribe finds the stream that captures the subject (streamName, else
// the stream bound to the subject, else it creates one named after the
// topic), creates or updates the durable pull consumer "<durableName or
// consumerID>-<topic>" filtered on the subject, and consumes it: every
// instance of one consumer group pulls from the same durable consumer, so
// they compete, while other groups have consumers of their own. Messages go
// to the SDK's handler (concurrently, up to maxAckPending); an ack is an
// explicit Ack, a nack a Nak (or NakWithDelay nakDelay), a message in flight
// when the subscription ends is Nak'ed, and one whose consumer died comes
// again after ackWait: at-least-once, up to maxDeliver times.
package main
