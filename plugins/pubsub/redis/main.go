// Command pubsub-redis is the pubsub.redis plugin: Dapr-compatible pub/sub
// on Redis Streams with consumer groups.
package main

import "github.com/outrigger/outrigger/plugins/sdk"

func main() {
	sdk.Serve(sdk.Name("redis"), sdk.WithPubSub(New))
}
