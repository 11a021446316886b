// Package main is the secretstores.local.env plugin binary: a
// Dapr-compatible secret store whose secrets are environment variables of
// the plugin process (which the Outrigger host launches with the sidecar's
// environment), served by plugins/sdk.
//
// Data flow: Init reads the optional prefix; Get(name) reads variable
// <prefix><name> live and answers {name: value}; BulkGet lists every
// variable starting with the prefix, the prefix stripped from the names.
// Variables that configure Dapr or the plugin itself (DAPR_*, APP_API_TOKEN,
// the go-plugin handshake and PLUGIN_* variables) are never returned.
package main
