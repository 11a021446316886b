// Command pubsub-sqlite is the pubsub.sqlite plugin: a durable pub/sub log in
// one SQLite file, shared by every sidecar on the machine (pure Go, no cgo).
package main

import "github.com/outrigger/outrigger/plugins/sdk"

func main() {
	sdk.Serve(sdk.Name("sqlite"), sdk.WithPubSub(New))
}
