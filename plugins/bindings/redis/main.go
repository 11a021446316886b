// Command bindings-redis is the bindings.redis plugin: an output binding
// setting, reading and deleting Redis keys.
package main

import "github.com/outrigger/outrigger/plugins/sdk"

func main() {
	sdk.Serve(sdk.Name("redis"), sdk.WithOutputBinding(func() sdk.OutputBinding { return New() }))
}
