// Package meta holds the repository's meta tests: checks on the shape of
// the source tree itself rather than on any one package's behaviour. It has
// no code of its own, only tests, which walk the module from its root:
//
//   - every Go package directory (except generated code under proto/gen and
//     testdata) has a doc.go whose package comment starts "Package <name> "
//     (a command may say "Command <name> ", as Go's own commands do);
//   - every plugin folder plugins/<kind>/<name>/ with a main.go has a
//     README.md with the sections Name, Description, Metadata (a table) and
//     Examples in that order, and every ```yaml component block in it loads
//     through proxy/resources.Load into a component of type <kind>.<name>;
//     the embedded default (state.sqlite) is also built, launched through
//     plugins/host and Init'ed with its README example.
//
// (That plugins/sdk imports nothing of proxy/, plugins/host, discovery/ or
// resiliency/ is checked by plugins/sdk's own tests.)
package meta
