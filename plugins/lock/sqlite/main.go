// Command lock-sqlite is the lock.sqlite plugin (embedded default lock store).
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "lock.sqlite")
	sdk.Serve(sdk.Name("sqlite"), sdk.Logger(log), sdk.WithLockStore(func() sdk.LockStore { return New(log) }))
}
