// Package main is the bindings.mqtt3 plugin: an input and output binding on
// one MQTT topic, as Dapr's bindings.mqtt3, built on paho.golang.
//
// Data flow: the output side (Output) keeps one publisher connection and
// publishes each create call's data. The input side (Input) opens a
// connection per Read stream with the consumerID as client id and a
// persistent session, subscribes, and hands messages to the SDK one at a
// time in arrival order; a message is acknowledged (manual MQTT acks) only
// after the app accepted it or the retries ran out, so a message in flight
// when a stream or the plugin ends is redelivered when the session resumes.
package main
