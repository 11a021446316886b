// Package loadgen is the benchmark's closed-loop load generator and latency histogram.
//
// Run starts a fixed number of workers, each a goroutine that sends one request at a time over a
// keep-alive connection of one shared http.Transport (sized so every worker keeps its own
// connection), waits for the whole response, and immediately sends the next: the offered load
// adapts to the server, as with wrk or hey. RunOps is the same loop around any operation (a Redis
// command, a gRPC call, a publish) given as an Op, which receives its worker's index so it can keep
// per-worker keys or state. A run is a warm-up (results discarded) followed by a measured window;
// it is bounded by time (warm-up + duration), by count (MaxRequests attempts in all) and by the
// caller's context, and Run refuses any target but 127.0.0.1. Each worker records latencies into
// its own Histogram (fixed-size, log-linear, ~0.4 % precision, no allocation per sample); the run
// merges them when the window closes. Hooks on the window's start and end let the caller snapshot
// the CPU of the processes under test at the same instants.
package loadgen
