// Command bindings-localstorage is the bindings.localstorage plugin: an
// output binding reading and writing files under one directory.
package main

import "github.com/outrigger/outrigger/plugins/sdk"

func main() {
	sdk.Serve(sdk.Name("localstorage"), sdk.WithOutputBinding(func() sdk.OutputBinding { return New() }))
}
