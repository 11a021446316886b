// Package main is the lock.redis plugin: a distributed lock store on Redis,
// following Dapr's lock.redis (standalone Redis).
//
// Data flow: the SDK (plugins/sdk, service outrigger.components.v1.LockStore)
// hands TryLock and Unlock requests to Store. A lease is one Redis string
// key (the resource id the sidecar already prefixed) holding the owner, with
// a PX expiry: TryLock is `SET key owner NX PX ms`, so only one client can
// create the key and Redis itself ends the lease. Unlock runs one Lua script
// that reads the key, compares the owner and deletes it only for its owner,
// so no other client can slip in between the check and the delete.
package main
