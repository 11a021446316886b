// Package appchannel is the sidecar's connection to its own app.
//
// A Channel delivers an invocation to the app and returns its answer, whatever
// the app speaks: the HTTP channel sends `<VERB> /<method>?<query>` with the
// request headers and streams both bodies; the gRPC channel calls
// AppCallback.OnInvoke and turns the reply into the same Response shape, so the
// invoke building block never cares which it has. The package also waits for the
// app port to open at start-up and, when asked, probes the app's health, the way
// daprd does (Waiter and Prober).
//
//	invoke (callee side) ──Request──▶ Channel ──HTTP or gRPC──▶ app
//	                     ◀─Response──         ◀───────────────
package appchannel
