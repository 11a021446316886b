// Command configuration-postgresql is the configuration.postgresql plugin.
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "configuration.postgresql")
	sdk.Serve(sdk.Name("postgresql"), sdk.Logger(log), sdk.WithConfigurationStore(func() sdk.ConfigurationStore { return New(log) }))
}
