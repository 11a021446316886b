// Command pubsub-nats is the pubsub.nats plugin: Dapr-compatible pub/sub on
// NATS JetStream durable consumers (Dapr's pubsub.jetstream).
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "pubsub.nats")
	sdk.Serve(sdk.Name("nats"), sdk.WithPubSub(func() sdk.PubSub { return New(log) }))
}
