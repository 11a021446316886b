// Package state is the state management building block: Dapr's state API over
// HTTP (/v1.0/state/…, /v1.0-alpha1/state/{store}/query) and gRPC (GetState,
// SaveState, …, QueryStateAlpha1), served against state stores that run as
// out-of-process plugins speaking Dapr's pluggable-component protocol
// (dapr.proto.components.v1 StateStore, TransactionalStateStore,
// QueriableStateStore, TransactionalStoreMultiMaxSize).
//
// Data flow: a handler decodes the request (HTTP JSON or the generated gRPC
// message), resolves the named store through the Stores interface (the plugin
// host adapts to it), validates and prefixes every key (<appId>||key by
// default, see the keyPrefix strategies in prefix.go), builds the
// componentsv1 request and calls the plugin over the store's connection.
// Plugin answers come back with the prefix stripped; plugin errors are
// classified once (etag mismatch / invalid etag / anything else, see
// pluginError) and rendered through the one error table in proxy/errs, so HTTP
// and gRPC report the same Dapr codes.
//
// Value rule (as Dapr): an HTTP save stores the raw JSON bytes of the item's
// "value" field (so "value":"x" stores "x" with its quotes); a gRPC SaveState
// stores the bytes it receives; HTTP GET returns the stored bytes with
// Content-Type application/json.
package state
