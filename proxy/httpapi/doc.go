// Package httpapi is the Dapr-compatible HTTP API server (default :3500).
//
// Its Router is the pipeline's terminal handler: service invocation
// (/v1.0/invoke/{app}/method/{method…}, and any path carrying a dapr-app-id
// header or Basic-auth user) takes a fast path straight to the invoke building
// block, streaming bodies both ways; every other route lives on a ServeMux to
// which building blocks add their routes (RouteRegistrar). Unknown routes fall
// to the invoke fallback, as in Dapr: with no app id they get 404
// ERR_DIRECT_INVOKE.
package httpapi
