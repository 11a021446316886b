// Package main is the pubsub.mqtt plugin: a Dapr-compatible pub/sub broker
// on an MQTT 5 server (tested with Mosquitto 2) through paho.golang's
// autopaho, with the metadata names of Dapr's pubsub.mqtt3.
//
// Data flow: Publish sends one QoS 1 (qos) PUBLISH on the instance's
// publishing connection and returns on the PUBACK; ttlInSeconds becomes the
// MQTT 5 message expiry, the content type and request metadata travel as
// the content type and user properties. Each Subscribe opens a connection
// of its own with a stable client id (clientID, else consumerID plus a
// per-instance suffix, plus a hash of the topic), a persistent session
// (clean start off, sessionExpiry) and the shared subscription
// "$share/<consumerID>/<topic>", so instances of one app compete and other
// apps each get every message. Acks are manual: a message is PUBACKed only
// once the handler returned nil (paho sends PUBACKs in arrival order). MQTT
// has no nack, so a nacked message is offered to the handler again in this
// process after a growing pause, still unacked; when the subscription ends
// or the process dies, unacked messages stay in the broker's session and
// are delivered again when the same client id reconnects: at-least-once.
package main
