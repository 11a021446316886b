// Package main is the state.redis plugin binary: a Dapr-compatible state
// store on Redis, served to the Outrigger host (or to daprd, through a unix
// socket) by plugins/sdk.
//
// Data flow: the host calls Init with the Component YAML metadata (parse in
// metadata.go turns it into a config and a go-redis client is built), then
// Get/Set/Delete/Transact/Bulk* over gRPC; the SDK decodes each call and hands
// it to Store (store.go).
//
// Storage follows Dapr's state.redis: each key is a hash with fields "data"
// (the value bytes) and "version" (an integer incremented on every write);
// the version is the etag. Every write — a single Set or Delete, or a whole
// transaction — is one run of the Lua script in script.go, which checks all
// etags and first-write conditions before writing anything, so checks and
// writes are atomic on the server. TTLs are PEXPIRE on the hash (request
// metadata ttlInSeconds, else the component's ttlInSeconds; -1 = never).
// Bulk calls pipeline one script run or HMGET per key in one round trip.
//
//	host ──gRPC──▶ sdk ──▶ Store.Set ──EVALSHA write.lua──▶ Redis hash {data, version}
//	               sdk ◀── Store.Get ◀──HMGET data version + PTTL──┘
package main
