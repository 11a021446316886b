// Package main is the bindings.redis plugin: an output binding over one
// Redis key per call, as Dapr's bindings.redis.
//
// Data flow: Init parses redisHost & co. into a go-redis client and pings
// it. Each Invoke reads request metadata "key" (and "ttlInSeconds") and runs
// SET (create), GET (get; a missing key answers no data), DEL (delete) or
// INCR (increment).
package main
