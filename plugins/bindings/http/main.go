// Command bindings-http is the bindings.http plugin: an output binding
// calling an HTTP endpoint.
package main

import "github.com/outrigger/outrigger/plugins/sdk"

func main() {
	sdk.Serve(sdk.Name("http"), sdk.WithOutputBinding(func() sdk.OutputBinding { return New() }))
}
