// Package main is the bindings.rabbitmq plugin: an input and output binding
// on one RabbitMQ queue, with Dapr's bindings.rabbitmq metadata names. The
// AMQP work (connection, metadata, publisher confirms, consuming with manual
// acks) lives in plugins/internal/amqpclient, shared with pubsub.rabbitmq;
// this package maps the SDK's binding calls onto it.
//
// Data flow: both sides declare the queue queueName as Dapr does (durable,
// deleteWhenUnused, exclusive, x-message-ttl from ttlInSeconds,
// x-max-priority from maxPriority). The output side (Output) publishes each
// create call's data to the default exchange with the queue name as routing
// key and waits for the broker's confirm. The input side (Input) consumes
// the queue on a channel per Read stream and hands each delivery to the SDK
// (one at a time by default, as Dapr does): the app's 2xx acks it, a failure
// nacks it back onto the queue, and a delivery still unacknowledged when the
// stream or the plugin ends is requeued by the broker (at-least-once).
package main
