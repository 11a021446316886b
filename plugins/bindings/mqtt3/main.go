// Command bindings-mqtt3 is the bindings.mqtt3 plugin: an input and output
// binding on an MQTT topic.
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sdk.Serve(sdk.Name("mqtt3"), sdk.Logger(log),
		sdk.WithInputBinding(func() sdk.InputBinding { return NewInput(log) }),
		sdk.WithOutputBinding(func() sdk.OutputBinding { return NewOutput(log) }))
}
