// Command bindings-rabbitmq is the bindings.rabbitmq plugin: an input and
// output binding on one RabbitMQ queue.
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "bindings.rabbitmq")
	sdk.Serve(sdk.Name("rabbitmq"), sdk.Logger(log),
		sdk.WithInputBinding(func() sdk.InputBinding { return NewInput(log) }),
		sdk.WithOutputBinding(func() sdk.OutputBinding { return NewOutput(log) }))
}
