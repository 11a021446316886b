// Package sdk is what an Outrigger plugin author imports to write a
// component (today: a state store) as an out-of-process gRPC plugin.
//
// A plugin's main makes one call:
//
//	sdk.Serve(sdk.Name("sqlite"), sdk.WithStateStore(New))
//
// Data flow: the host (Outrigger, or a real daprd) calls the Dapr
// pluggable-component services (dapr.proto.components.v1 StateStore,
// TransactionalStateStore, QueriableStateStore) with gRPC metadata
// x-component-instance naming the component. Init creates one store value per
// instance through the factory; every later call is routed to that value,
// converted from the wire types into this package's plain Go types, and the
// store's errors are mapped back to gRPC statuses in one place (errors.go),
// exactly as Dapr expects (etag errors carry a BadRequest "etag" violation).
//
// Optional capabilities are one-method interfaces (ETagger, Transactioner,
// Querier, TTLer, BulkGetter, …) found by type assertion; the features the
// plugin advertises are derived from them so they cannot lie, and bulk calls
// fall back to loops when a store has no bulk method.
//
// Serving: launched by the Outrigger host (the Handshake magic cookie in the
// environment) the plugin serves under hashicorp/go-plugin; otherwise it
// listens on <sockets dir>/<name>.sock with gRPC reflection and health, so a
// real daprd discovers it too. The conformance kit in sdktest checks any
// store against this contract through a real gRPC pair.
package sdk
