// Command secretstores-local.file is the secretstores.local.file plugin: a
// Dapr secret store read from a JSON file, for development.
package main

import "github.com/outrigger/outrigger/plugins/sdk"

func main() {
	sdk.Serve(sdk.Name("local.file"), sdk.WithSecretStore(New))
}
