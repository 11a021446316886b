// Package pipeline is the request pipeline every API call flows through.
//
// A Filter is one small concern (recover, access log, API token, …) with an HTTP
// form (func(next http.Handler) http.Handler) and a gRPC form (interceptors).
// The order lives in one place, order.go: configuration turns filters on or off
// and configures them, never reorders them. Build folds the enabled filters from
// the last entry back around the terminal router, as CoreDNS builds its plugin
// chain and Envoy runs its HTTP filter chain: the first entry sees every request
// first.
//
//	request ─▶ recover ─▶ accesslog ─▶ tracing ─▶ metrics ─▶ apitoken ─▶ allowlist ─▶ middleware ─▶ router
package pipeline
