// Command pubsub-mqtt is the pubsub.mqtt plugin: Dapr-compatible pub/sub on
// an MQTT 5 broker with QoS 1 and shared subscriptions.
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "pubsub.mqtt")
	sdk.Serve(sdk.Name("mqtt"), sdk.WithPubSub(func() sdk.PubSub { return New(log) }))
}
