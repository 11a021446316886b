// Package mdparse reads typed values from a component's metadata map, the
// Dapr way: keys are matched exactly (as Dapr's YAML spells them), values are
// trimmed, an empty or missing value means "use the default", and a bad value
// is reported as `metadata key="value": want …`.
//
// A plugin's config parser makes one Reader over its metadata, calls the
// typed getters (Int, Bool, Duration) in the order it wants errors reported,
// and checks Err once at the end: the Reader keeps only the first error, so
// a parser reads straight through without an if after every key.
package mdparse
