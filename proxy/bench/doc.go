// Command bench is Outrigger's benchmark (`make bench`): it measures each building block through
// Outrigger sidecars side by side with a baseline (a direct call, a minimal reverse-proxy pair, the
// same Redis commands made directly with go-redis), in one run and one process tree, and prints
// one table per suite with the ratios next to the project's performance goals.
//
// Usage:
//
//	go run ./proxy/bench -outrigger bin/outrigger [-suite all|invoke,state,pubsub,lock,secrets,resiliency]
//	                     [-c 32] [-body 1024] [-duration 10s] [-warmup 2s] [-rounds 1] [-quick]
//	                     [-redis 127.0.0.1:6379] [-pubsub-inflight 256] [-skip-outrigger]
//	                     [-json out.json] [-strict]
//
// Suites (each one's processes are stopped before the next starts, and the Redis keys it wrote
// are deleted):
//
//   - invoke: the invocation scenarios below, sidecar start-up time and idle RSS.
//   - state: get and set through an app-less sidecar over HTTP and gRPC against state.redis, next
//     to the same operations made directly with go-redis on the plugin's data layout (HMGET+PTTL;
//     the plugin's Lua write script), at -c workers and at 1 worker (unloaded latency); and the
//     idle RSS of every plugin process, read through the pids in GET /v1.0/metadata.
//   - pubsub: publish → deliver through two sidecars (an app-less publisher, a subscriber with an
//     in-process HTTP app) for pubsub.redis and pubsub.sqlite, next to go-redis XADD/XREADGROUP;
//     each message carries its send time, the subscriber records end-to-end latency, and at most
//     -pubsub-inflight messages are undelivered at any time (publishers wait for credits).
//   - lock: acquire + release through the sidecar (HTTP, gRPC) against lock.redis, next to the
//     plugin's SET NX PX and release script made directly.
//   - secrets: GetSecret from secretstores.local.file through the sidecar (HTTP, gRPC).
//   - resiliency: the two-hop invocation with a Resiliency policy (retry + circuit breaker on the
//     target app) and tracing at sampling 1 to an in-process Zipkin collector, next to both off.
//     A probe (an app method failing each token's first call) tells whether the policy is applied;
//     when it is not, the row is labelled tracing-only and the table says so.
//
// The state and lock suites also have "floor" rows (get/set/lock floor http|grpc, at -c workers):
// the same requests, from the same clients, answered by a no-op Go server in its own process
// (`__floor`: a plain net/http server and a plain grpc-go DaprServer with fixed answers). They
// measure the ceiling of any Go server on this machine; an informational line among the goals
// (no verdict) gives its share of direct throughput next to the sidecar's.
//
// A tighter ceiling, the thinnest Go sidecar, has "fwd floor" rows (get/set/lock fwd floor
// http|grpc): the same requests to a floor child started with -forward <socket>, whose net/http
// and grpc-go handlers decode what a sidecar must (path values, the JSON body) and make one unary
// gRPC call, over one shared connection, to a second floor child started with -listen-unix
// <socket> (a no-op plugin: a DaprServer on a unix socket, no HTTP), mapping its answer to the
// no-op floor's reply (an upstream error is a 500, or its gRPC status). It has the architecture's
// one extra process hop and nothing else; its CPU column counts both processes, and its ceiling
// line gives the sidecar's throughput as a share of it.
//
// A suite whose plugin binary is missing from plugins/ beside -outrigger prints a SKIPPED line.
// Package loadgen drives every suite's closed loop (Run for HTTP, RunOps for any operation).
//
// Invocation suite. // Data flow: the bench re-executes its own binary with hidden subcommands to start the echo apps
// (`__echo`) and the baseline proxies (`__proxy`, a stock httputil.ReverseProxy), so every proxy
// under test is a separate process and its CPU is measured the same way; each child reports its
// listening address on its first stdout line ("LISTENING <addr>"; the floor child, with two
// listeners, "LISTENING http=<addr> grpc=<addr>"). Outrigger sidecars are started from -outrigger with
// daprd-style flags on free loopback ports (the first on a random gossip port, the second joining
// it), an empty resources directory, a private plugin sockets directory and a private OUTRIGGER_HOME,
// so the bench never touches the user's own sidecars. Then, for each scenario:
//
//	1 direct          client → app
//	2 sidecar-local   client → sidecar A → app A            (invoke A's own app id)
//	3 sidecar-2hop    client → sidecar A → sidecar B → app B
//	4 proxy-2hop      client → proxy 1 → proxy 2 → app B    (baseline for 3)
//
// package loadgen drives a closed-loop load (N workers, one keep-alive connection each) for a
// warm-up and a measured window, while package procstat snapshots utime+stime of the scenario's
// proxy processes at the window's edges. Before the load, the bench also times sidecar start-up
// (process start → GET /v1.0/healthz/outbound = 204, polled every millisecond) and reads an idle
// sidecar's VmRSS once it has settled. Results go to stdout as a table (and to -json); all
// children are stopped on exit, including on Ctrl-C.
package main
