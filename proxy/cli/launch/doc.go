// Package launch supervises the processes `outrigger run` starts: for each
// app, a sidecar and (optionally) the app itself.
//
// A Supervisor takes a list of Pairs. For each pair it starts the sidecar,
// waits for the pair's Ready check if it has one (run uses the sidecar's
// outbound health endpoint when the app has no port), then starts the app and
// calls OnStarted. Each process runs in its own process group; its output is
// split into lines and written through LineWriters, which prefix each line
// (`== APP == …`) on a shared Console and can copy it raw to a log file.
//
// A pair ends when its app exits: the supervisor then stops the sidecar
// (SIGTERM to its process group, then SIGKILL after the grace period). When
// the context is cancelled (Ctrl-C) every process is stopped the same way.
// If a sidecar dies on its own, its app is stopped and the pair fails.
// Run returns when every pair has ended, with the exit code to report.
package launch
