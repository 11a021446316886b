// Package metadata is the metadata building block: what GET /v1.0/metadata and
// gRPC GetMetadata report (app id, runtime version, components, subscriptions,
// app connection, extended attributes) and what PUT /v1.0/metadata/{key} and
// SetMetadata store. Other parts contribute through Sources, read at request
// time, so the answer is always current.
package metadata
