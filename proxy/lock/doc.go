// Package lock is the distributed lock building block (Dapr's alpha API):
// HTTP POST /v1.0-alpha1/lock/{store} and /v1.0-alpha1/unlock/{store}, gRPC
// TryLockAlpha1 and UnlockAlpha1, served against lock stores that run as
// out-of-process plugins on Outrigger's own (experimental)
// outrigger.components.v1.LockStore service.
//
// Data flow: a handler decodes the request (protojson for HTTP, as Dapr's
// universal handlers do, into the same runtimev1 messages gRPC receives),
// validates it in Dapr's order (expiry first for TryLock, then "no lock
// stores", empty resourceId, empty lockOwner, unknown store), rewrites the
// resource id with the store's keyPrefix strategy (lock||<appId>||<id> by
// default, see key.go), and calls the plugin over the store's connection.
// Plugin answers map back to Dapr's TryLockResponse / UnlockResponse (the
// unlock status is numeric on HTTP); failures render through the error table
// in proxy/errs, so HTTP and gRPC report the same codes.
package lock
