// Command bindings-kafka is the bindings.kafka plugin: an input and output
// binding on Apache Kafka topics.
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "bindings.kafka")
	sdk.Serve(sdk.Name("kafka"), sdk.Logger(log),
		sdk.WithInputBinding(func() sdk.InputBinding { return NewInput(log) }),
		sdk.WithOutputBinding(func() sdk.OutputBinding { return NewOutput(log) }))
}
