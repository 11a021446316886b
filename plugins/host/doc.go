// Package host starts, discovers, health-checks and restarts component
// plugins, and turns a Component manifest into a live gRPC client.
//
// Lifecycle (after Caddy's modules): Provision launches or attaches to the
// plugin, calls Init under the component's initTimeout, then validates it
// (Features, Ping); the component then serves until Remove or Close, which
// close the connection and stop the process (go-plugin's graceful Close,
// then Kill). A failure part-way leaves nothing behind.
//
// Where a type comes from:
//
//   - Managed plugins: type "state.sqlite" is the binary
//     <PluginsDir>/state-sqlite, launched through hashicorp/go-plugin (gRPC,
//     sdk.Handshake, plugin set "component"). One process per binary
//     serves every component of that type; calls carry
//     x-component-instance: <component name>, as in Dapr. The plugin's
//     stderr and stdout and go-plugin's own log go to the host's slog
//     logger tagged plugin=<binary>.
//   - Attached plugins: unix sockets in SocketsDir, discovered as daprd does
//     (gRPC reflection v1alpha ListServices; "<category>.<socket name>"),
//     and kept current by an fsnotify watch. Provision of a type whose
//     socket is not there yet waits for it up to the component's
//     initTimeout, then fails with ErrUnknownType listing what is
//     available (chosen over "pending" components so a typo in a type is
//     an error at start-up, not a component that never works).
//
// Supervision: a goroutine per plugin watches the process (exit), the
// connection (leaving READY) and a periodic grpc health check. A plugin
// that dies is restarted at once, then with doubling backoff capped at
// Config.MaxBackoff; a socket plugin is re-dialled when its socket comes
// back. Every component it served is Init'ed again with the same metadata
// before calls are let through. Meanwhile Component.Conn fails every call
// at once with codes.Unavailable "plugin <name> is restarting"; a call
// never waits for a plugin.
//
// Data path: Component.Conn returns a grpc.ClientConnInterface that loads
// the plugin's current *grpc.ClientConn (an atomic pointer) and appends one
// metadata pair; one ClientConn per plugin process is shared by all its
// components.
//
// Batching: a plugin that serves outrigger.components.v1.UnaryBatch (every
// plugin built with plugins/sdk does) gets its unary calls coalesced under
// load. Up to two calls or batches are in flight per plugin connection;
// calls arriving while both are out wait, and when one returns the whole
// queue leaves as one UnaryBatch call. There is no timer, so an idle or
// lightly loaded plugin sees plain unary calls with no added latency. Each
// call keeps its own method, metadata and deadline and gets exactly the
// result it would have got alone; the batch is cancelled once all its
// callers have gone. Plugins without the service (any Dapr pluggable
// component) always get plain calls. PluginStatus counts the batches.
package host
