// Command bindings-cron is the bindings.cron plugin: an input binding that
// triggers the app on a cron schedule.
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sdk.Serve(sdk.Name("cron"), sdk.Logger(log), sdk.WithInputBinding(func() sdk.InputBinding { return New(log) }))
}
