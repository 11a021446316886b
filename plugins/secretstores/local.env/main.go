// Command secretstores-local.env is the secretstores.local.env plugin: a
// Dapr secret store reading the process environment, for development.
package main

import "github.com/outrigger/outrigger/plugins/sdk"

func main() {
	sdk.Serve(sdk.Name("local.env"), sdk.WithSecretStore(New))
}
