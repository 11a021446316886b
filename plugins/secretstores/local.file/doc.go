// Package main is the secretstores.local.file plugin binary: a
// Dapr-compatible secret store whose secrets are the values of a JSON file,
// served to the Outrigger host (or to daprd, through a unix socket) by
// plugins/sdk.
//
// Data flow: Init (metadata secretsFile, nestedSeparator, multiValued) reads
// and flattens the file once into an immutable map; Get and BulkGet answer
// from that map, so they are safe for concurrent use without locks.
//
//	{"db": {"user": "u", "pass": "p"}, "token": "t"}
//	single-valued: "db:user" → {"db:user": "u"}, "db:pass" → {…}, "token" → {"token": "t"}
//	multiValued:   "db" → {"user": "u", "pass": "p"}, "token" → {"token": "t"}
package main
