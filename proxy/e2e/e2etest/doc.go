// Package e2etest is the harness the end-to-end test packages under
// proxy/e2e share; only tests import it.
//
// A test package's TestMain builds the binaries it needs with Build (the
// release layout: dir/outrigger beside dir/plugins/<kind>-<name>). Tests
// then take loopback ports from FreePort, start child processes with
// StartProc (output captured in an Output, the process ended and its output
// shown on failure when the test ends) and sidecars with LaunchSidecar
// (free API/metrics/gossip ports, a private OUTRIGGER_HOME, an environment
// cleaned by CleanEnv), wait for them with Sidecar.WaitHealthy, and poll
// for any other condition with WaitFor. Package-specific apps, manifests
// and HTTP helpers stay in the test packages.
package e2etest
