// Command state-sqlite is the state.sqlite plugin: a Dapr state store on an
// embedded SQLite database file (pure Go, no cgo).
package main

import "github.com/outrigger/outrigger/plugins/sdk"

func main() {
	sdk.Serve(sdk.Name("sqlite"), sdk.WithStateStore(New))
}
