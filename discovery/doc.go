// Package discovery resolves Dapr app ids to sidecar addresses over
// hashicorp/memberlist gossip, and balances requests across the instances
// it finds.
//
// Every sidecar is a memberlist member. Its node metadata (a few dozen bytes,
// always under memberlist's 512-byte limit) carries its app id, its internal
// gRPC address (host:port, what other sidecars dial for service invocation
// and actors) and the actor types it hosts. Gossip spreads it; each member
// keeps an index of everybody else:
//
//	Start(ctx, Config) ──► memberlist (UDP+TCP gossip, Local or LAN profile)
//	                          │ join / update / leave events (EventDelegate)
//	                          ▼
//	                       index: app id → []Instance, actor type → []Instance
//	                          │ immutable snapshot, swapped on every event
//	                          ▼
//	      Resolve(ctx, appID) ──► Balancer.Pick ──► caller dials Instance.Addr,
//	                                               then done(err)
//
// Lookups are a map read of the current snapshot: no lock, no network, and
// an unknown app fails at once with ErrNoInstances.
//
// Finding each other: with Config.Join empty (zero-config on one host) the
// first sidecar binds the well-known gossip port (DefaultGossipPort, 7946);
// later ones find it taken, bind a free port and join 127.0.0.1:7946, plus
// any addresses Config.Seeds returns (the host-local sidecar registry). A
// loop every 2 s re-joins any of these seeds that is not an alive member, so
// when the sidecar on 7946 dies the rest stay connected to each other, and
// whichever sidecar binds 7946 next is joined by all of them.
//
// Leaving: Close broadcasts a leave, so others drop the member at once. A
// killed sidecar is detected by probing; the Local profile does that within
// 5 s (see localProfile for the arithmetic). In the seconds before that,
// callers that get "connection refused" call Balancer.MarkFailed (or pass the
// error to done) to skip the instance.
//
// Memberlist's own log lines go to the configured slog.Logger at debug
// level; discovery logs joins and departures at info.
package discovery
