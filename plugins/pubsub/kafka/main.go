// Command pubsub-kafka is the pubsub.kafka plugin: Dapr-compatible pub/sub
// on Apache Kafka with consumer groups.
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "pubsub.kafka")
	sdk.Serve(sdk.Name("kafka"), sdk.WithPubSub(func() sdk.PubSub { return New(log) }))
}
