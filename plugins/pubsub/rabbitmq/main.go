// Command pubsub-rabbitmq is the pubsub.rabbitmq plugin: Dapr-compatible
// pub/sub on RabbitMQ with a durable queue per consumer group.
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "pubsub.rabbitmq")
	sdk.Serve(sdk.Name("rabbitmq"), sdk.WithPubSub(func() sdk.PubSub { return New(log) }))
}
