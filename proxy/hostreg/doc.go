// Package hostreg is the host-local registry of running Outrigger sidecars.
//
// Each sidecar calls Write when it starts: that writes one small JSON file,
// $OUTRIGGER_HOME/run/<app-id>-<pid>.json (OUTRIGGER_HOME defaults to
// ~/.outrigger), describing its ports, its app and its command line. The
// returned remove func deletes the file at exit. Writing again with the same
// app id and pid replaces the file atomically, so a sidecar can refresh its
// entry (for example once it learns its app's pid).
//
// The CLI commands (`outrigger list`, `stop`, `invoke`, `publish`) read the
// directory with List or Find. A file whose pid is no longer alive (the
// sidecar crashed or was killed before it could remove its file) is ignored
// and deleted, so the registry heals itself without a daemon.
package hostreg
