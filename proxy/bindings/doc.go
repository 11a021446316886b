// Package bindings is the bindings building block: Dapr's output binding API
// (POST|PUT /v1.0/bindings/{name}, gRPC InvokeBinding) and input binding
// delivery to the app, over bindings.* plugins.
//
// Output data flow: the HTTP handler or InvokeBinding builds one
// componentsv1.InvokeRequest (data, metadata with the caller's
// traceparent/tracestate, operation), checks the operation against the
// plugin's ListOperations (cached per binding) and calls the plugin's
// OutputBinding.Invoke through Binding.Conn; the answer's metadata comes back
// as metadata.<k> headers (HTTP) or gRPC header metadata, and every failure
// is 500 ERR_INVOKE_OUTPUT_BINDING, as in Dapr.
//
// Input data flow: Start (called once the app is ready) asks the app which
// input bindings it wants (OPTIONS /<route> on HTTP apps unless the
// component's direction metadata names input; ListInputBindings on gRPC
// apps), then opens one InputBinding.Read stream per binding. Each event is
// delivered concurrently as POST /<route> (HTTP) or OnBindingEvent (gRPC);
// the app's answer goes back on the stream (response_data, or
// response_error for a non-2xx / error, so the plugin retries or nacks per
// its kind). An answer carrying {storeName, state, to, data, concurrency}
// saves state through the StateSaver and forwards data to output bindings.
// A broken stream is reopened with backoff (a restarted plugin is re-read);
// Stop stops taking events, lets in-flight deliveries finish and reply, then
// closes the streams.
package bindings
