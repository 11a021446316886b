// Package main is the pubsub.rabbitmq plugin: a Dapr-compatible pub/sub
// broker on RabbitMQ (AMQP 0-9-1), with Dapr's metadata names and queue
// layout. The AMQP work lives in plugins/internal/amqpclient, shared with
// bindings.rabbitmq; this package maps the SDK's PubSub calls onto it.
//
// Data flow: a topic is an exchange of the same name (fanout by default).
// Publish sends to it, with the content type, the request metadata as
// headers and ttlInSeconds as the message expiration, and waits for the
// publisher confirm. Subscribe declares the queue "<consumerID>-<topic>"
// (durable, as Dapr names it), binds it to the exchange and consumes it
// with manual acks: instances of one app compete on the queue, other apps
// have queues of their own. An ack acks the delivery, a nack requeues it,
// and a delivery unacked when the subscription ends is requeued by the
// broker: at-least-once.
package main
