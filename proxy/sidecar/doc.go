// Package sidecar wires the Outrigger sidecar together: it reads the options
// (daprd's flag names), loads resources, starts gossip discovery, the plugin
// host, the API servers behind the request pipeline, and the app channel, then
// waits for the app and serves until told to stop, when it drains in-flight
// requests. It only connects parts; each building block owns its own start-up.
//
//	flags ─▶ Options ─▶ Run: resources → discovery → plugins → API servers
//	         (outbound healthz ready) → wait for app port → app health → ready
package sidecar
