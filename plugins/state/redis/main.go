package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "state.redis")
	sdk.Serve(sdk.Name("redis"), sdk.Logger(log), sdk.WithStateStore(func() sdk.StateStore { return New(log) }))
}
