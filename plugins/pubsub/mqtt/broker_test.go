package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const (
	mqttAddr = "127.0.0.1:1883"
	mqttURL  = "tcp://" + mqttAddr
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func newBroker() sdk.PubSub { return New(discard) }

func needMosquitto(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", mqttAddr, 2*time.Second)
	if err != nil {
		t.Fatalf("the MQTT server is not reachable at %s (%v): start it with `mosquitto -d -c /etc/mosquitto/mosquitto.conf`", mqttAddr, err)
	}
	_ = c.Close()
}

func TestConformance(t *testing.T) {
	needMosquitto(t)
	// Sessions of this run's unique client ids expire a minute after use.
	md := sdk.Metadata{"url": mqttURL, "sessionExpiry": "60", "retryInterval": "50ms"}
	sdktest.ExercisePubSub(t, newBroker, md,
		sdktest.RedeliveryWithin(5*time.Second), sdktest.ReadyWithin(5*time.Second))
}

func TestInitErrors(t *testing.T) {
	needMosquitto(t)
	cases := map[string]sdk.Metadata{
		"no url":             {"consumerID": "g"},
		"bad scheme":         {"url": "http://" + mqttAddr, "consumerID": "g"},
		"no consumerID":      {"url": mqttURL},
		"wildcard consumer":  {"url": mqttURL, "consumerID": "a/#"},
		"bad qos":            {"url": mqttURL, "consumerID": "g", "qos": "3"},
		"bad bool":           {"url": mqttURL, "consumerID": "g", "retain": "perhaps"},
		"bad keepAlive":      {"url": mqttURL, "consumerID": "g", "keepAlive": "0"},
		"caCert without tls": {"url": mqttURL, "consumerID": "g", "caCert": "x"},
		"unreachable":        {"url": "tcp://127.0.0.1:1", "consumerID": "g"},
	}
	for name, md := range cases {
		t.Run(name, func(t *testing.T) {
			b := newBroker()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := b.Init(ctx, md); err == nil {
				t.Fatalf("Init(%v) succeeded, want an error", md)
			}
			_ = b.(sdk.Closer).Close()
		})
	}
}
