// Command lock-redis is the lock.redis plugin.
package main

import (
	"log/slog"
	"os"

	"github.com/outrigger/outrigger/plugins/sdk"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "lock.redis")
	sdk.Serve(sdk.Name("redis"), sdk.Logger(log), sdk.WithLockStore(func() sdk.LockStore { return New(log) }))
}
