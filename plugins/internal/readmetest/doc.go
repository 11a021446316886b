// Package readmetest checks a plugin's README.md against the shape the
// plugin catalog relies on. It is a normal package imported only by the
// plugins' readme_test.go files.
//
// Check reads README.md from the test's working directory (the plugin
// folder), verifies the Name/Description/Metadata/Examples headings appear
// in order, that the Metadata section has the standard table header and
// documents every metadata key the plugin reads, and then writes every
// ```yaml component block to a temporary folder, loads them through the
// real proxy/resources Component loader, and hands each component's
// metadata to the plugin's own parse or Init function.
package readmetest
