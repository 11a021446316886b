// Package main is the bindings.http plugin: an output binding that sends
// HTTP requests to one configured URL, as Dapr's bindings.http.
//
// Data flow: Init parses the metadata (url, TLS options, default headers)
// into one http.Client. Each Invoke maps the operation to the verb (create =
// POST), appends the request metadata "path" to the URL, sets upper-case
// request metadata keys and traceparent/tracestate as headers, and answers
// with the response body plus metadata statusCode, status and the response
// headers; a non-2xx answer is an error unless errorIfNot2XX is false.
package main
