// Package cli is the `outrigger` command line: the cobra command tree that
// the main package runs through Execute.
//
// Commands and how data flows through them:
//   - sidecar: the proxy itself (the lead's sidecar.go), with daprd's flags.
//   - run: builds a sidecar command line from its flags (or from a Dapr
//     multi-app template, package runfile), picks free ports, and hands the
//     sidecar and app processes to package launch, which supervises them and
//     prefixes their output.
//   - list, stop, invoke, publish: find running sidecars in the host-local
//     registry (package hostreg) and talk to them over their HTTP API.
//   - init: writes default SQLite components and a Configuration under the
//     Outrigger home (~/.outrigger or $OUTRIGGER_HOME).
//   - version: build information from runtime/debug.
package cli
