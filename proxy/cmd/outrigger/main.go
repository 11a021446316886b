// Command outrigger is the Outrigger sidecar and its command-line tool.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/outrigger/outrigger/proxy/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx)
	stop()
	os.Exit(code)
}
