// Package cloudevent builds and reads the CloudEvents 1.0 envelopes the pub/sub
// building block puts on the wire, exactly as Dapr 1.14 does.
//
// Publishing: New turns a publish request (body, content type, topic, pubsub,
// trace headers, request metadata) into the envelope: the sidecar's own
// envelope (id, source = app id, type com.dapr.event.sent, specversion 1.0,
// datacontenttype, data / data_base64 chosen by content type, topic,
// pubsubname, traceid/traceparent/tracestate, time and, when a TTL is given and
// the broker cannot expire messages itself, expiration), or the user's own
// application/cloudevents+json event with only the missing fields filled in.
// metadata.cloudevent.* keys override id, source, type, traceparent and
// tracestate. New is the one place an envelope is built.
//
// Delivering: FromRaw wraps a raw-payload message into an envelope (source
// "Dapr", data_base64), Expired reports a passed expiration, and Data returns
// the event's payload bytes the way a gRPC app receives them.
package cloudevent
