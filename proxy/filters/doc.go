// Package filters holds the pipeline's small filters (recover, access log, API
// token, …). Each constructor returns a pipeline.Filter with its HTTP and gRPC
// forms; the order they run in is pipeline's business, not theirs.
package filters
