// Package runfile reads Dapr's multi-app run template (the dapr.yaml that
// `dapr run -f` takes) for `outrigger run -f`.
//
// Load reads the file (or <dir>/dapr.yaml), decodes it leniently (the
// format is Dapr's: keys we do not know are reported as warnings, not
// errors), merges the `common` section into every app (an app's own
// non-zero value wins; env maps are merged key by key) and resolves paths
// the way the dapr CLI does: appDirPath relative to the template's folder,
// an app's other paths relative to its appDirPath, common paths relative to
// the template's folder. Missing resources and config fall back to
// <appDir>/.dapr/{resources,config.yaml}, then to the Defaults given. The
// result is a list of fully resolved Apps that the CLI turns into sidecar
// and app processes.
package runfile
