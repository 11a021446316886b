// Command configuration-redis is the configuration.redis plugin.
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "configuration.redis")
	sdk.Serve(sdk.Name("redis"), sdk.Logger(log), sdk.WithConfigurationStore(func() sdk.ConfigurationStore { return New(log) }))
}
