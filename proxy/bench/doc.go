// Command bench is Outrigger's invocation benchmark (`make bench`): it measures service invocation
// through Outrigger sidecars side by side with a direct call and with a minimal reverse-proxy pair,
// in one run and one process tree, and prints the ratios next to the project's performance goals.
//
// Usage:
//
//	go run ./proxy/bench -outrigger bin/outrigger [-c 32] [-body 1024] [-duration 10s] [-warmup 2s]
//	                     [-quick] [-skip-outrigger] [-json out.json] [-strict]
//
// Data flow: the bench re-executes its own binary with hidden subcommands to start the echo apps
// (`__echo`) and the baseline proxies (`__proxy`, a stock httputil.ReverseProxy), so every proxy
// under test is a separate process and its CPU is measured the same way; each child reports its
// listening address on its first stdout line. Outrigger sidecars are started from -outrigger with
// daprd-style flags on free loopback ports (the first on a random gossip port, the second joining
// it), an empty resources directory and a private OUTRIGGER_HOME, so the bench never touches the
// user's own sidecars. Then, for each scenario:
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
