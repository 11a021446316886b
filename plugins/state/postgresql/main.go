package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "state.postgresql")
	sdk.Serve(sdk.Name("postgresql"), sdk.Logger(log), sdk.WithStateStore(func() sdk.StateStore { return New(log) }))
}
