// Package amqpclient is the RabbitMQ (AMQP 0-9-1, amqp091-go) client shared
// by the pubsub.rabbitmq and bindings.rabbitmq plugins: component metadata
// parsing with Dapr's names, one connection re-dialled on demand,
// publishing with publisher confirms, and consuming a queue with manual
// acks.
//
// Data flow: ParseConfig turns component metadata into a Config; New dials
// the connection. Publish declares the target exchange once (cached), sends
// on a shared confirm-mode channel and waits for the broker's confirm.
// Consume opens a channel of its own, declares the exchange, the queue and
// the binding described by a QueueSpec, sets the prefetch (QoS) and hands
// deliveries to the handler (concurrently, or one at a time in
// concurrencyMode single): nil acks the delivery, an error nacks it (requeued
// unless requeueInFailure is false), and deliveries still unacked when the
// channel closes are requeued by the broker: at-least-once. A lost
// connection ends Consume with an error; the next call re-dials.
package amqpclient
