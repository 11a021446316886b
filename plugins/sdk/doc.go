// Package sdk is what an Outrigger plugin author imports to write a component
// as an out-of-process gRPC plugin: a state store, pub/sub broker, input or
// output binding, secret store, configuration store or lock store.
//
// A plugin's main makes one call, with one option per category it serves:
//
//	sdk.Serve(sdk.Name("sqlite"), sdk.WithStateStore(New))
//	sdk.Serve(sdk.Name("mqtt3"), sdk.WithInputBinding(NewIn), sdk.WithOutputBinding(NewOut))
//
// Data flow: the host (Outrigger, or a real daprd) calls the Dapr
// pluggable-component services (dapr.proto.components.v1 StateStore,
// TransactionalStateStore, QueriableStateStore, PubSub, InputBinding,
// OutputBinding, SecretStore) — or, for the categories Dapr has no pluggable
// protocol for, Outrigger's own outrigger.components.v1 ConfigurationStore
// and LockStore — with gRPC metadata x-component-instance naming the
// component. Init creates one value per instance through the factory; every
// later call is routed to that value, converted from the wire types into this
// package's plain Go types, and errors are mapped back to gRPC statuses in one
// place (errors.go), exactly as Dapr expects (etag errors carry a BadRequest
// "etag" violation).
//
// Optional capabilities are one-method interfaces (ETagger, Transactioner,
// Querier, TTLer, BulkPublisher, MultiValuer, …) found by type assertion; the
// features a plugin advertises are derived from them so they cannot lie, and
// bulk calls fall back to loops when a component has no bulk method.
//
// Serving: launched by the Outrigger host (the Handshake magic cookie in the
// environment) the plugin serves under hashicorp/go-plugin; otherwise it
// listens on <sockets dir>/<name>.sock with gRPC reflection and health, so a
// real daprd discovers it too. Each With… option registers its category's
// services through one hook (addService), so a new category is a new file.
// Every plugin also serves outrigger.components.v1.UnaryBatch (batch.go):
// the host sends calls that queued up under load as one batch, and each
// runs through the same handler as the plain call. Calls of one method on
// one instance may run as one store operation: state Gets as one BulkGet,
// unconditional Sets and Deletes as one BulkSet/BulkDelete (state_merge.go)
// when the store has the bulk capability; a merged operation that fails is
// re-run call by call, so each call gets its own exact error.
// The conformance kit in sdktest checks any component against this contract
// through a real gRPC pair.
package sdk
