// Package configuration is the configuration building block: Dapr's
// configuration API over HTTP (GET /v1.0/configuration/{store},
// …/subscribe, …/{id}/unsubscribe, the same under v1.0-alpha1) and gRPC
// (GetConfiguration, SubscribeConfiguration, UnsubscribeConfiguration and
// their Alpha1 twins), served against configuration stores that run as
// out-of-process plugins on Outrigger's own (experimental)
// outrigger.components.v1.ConfigurationStore service.
//
// Data flow: Get resolves the named store through the Stores interface (the
// plugin host adapts to it) and calls the plugin's Get. A subscription opens
// the plugin's Subscribe stream and waits for its first (ready) message, so
// a change made after the subscribe call returns is never missed; it is then
// registered under a fresh id. For gRPC callers the changes are sent down
// the caller's stream (first message: the id); for HTTP callers a goroutine
// pushes each change to the app as POST /configuration/{store}/{key} with
// {"id","items"} through the AppChannel, and re-opens the plugin stream with
// backoff if the plugin restarts. Unsubscribe (HTTP or gRPC) cancels the
// subscription's context, which closes the plugin stream: that is the
// plugin-side unsubscribe. Errors render through proxy/errs.
package configuration
