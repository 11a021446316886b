// Command bindings-postgresql is the bindings.postgresql plugin: an output
// binding running SQL on PostgreSQL.
package main

import "github.com/outrigger/outrigger/plugins/sdk"

func main() {
	sdk.Serve(sdk.Name("postgresql"), sdk.WithOutputBinding(func() sdk.OutputBinding { return New() }))
}
