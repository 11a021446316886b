// Package pubsub is the publish/subscribe building block (proxy side): Dapr's
// publish API over HTTP (/v1.0/publish/{pubsub}/{topic...},
// /v1.0-alpha1/publish/bulk/…) and gRPC (PublishEvent,
// BulkPublishEventAlpha1, SubscribeTopicEventsAlpha1), and the consumption of
// subscribed topics, against brokers that run as out-of-process plugins
// speaking Dapr's pluggable PubSub protocol (dapr.proto.components.v1).
//
// Publishing: a handler resolves the broker (Brokers, adapted from the plugin
// host), checks rawPayload/ttlInSeconds metadata and the component's topic
// scoping (publishingScopes, allowedTopics, protectedTopics → 403
// ERR_PUBSUB_FORBIDDEN), wraps the body in its CloudEvent (package
// cloudevent, the one place an envelope is built) unless rawPayload, and
// calls the plugin's Publish; bulk publishing uses the plugin's BulkPublish
// when it advertises BULK_PUBSUB, else one Publish per entry, and reports the
// entries that failed. Errors come from the one table in proxy/errs.
//
// Subscribing: Start merges the declarative Subscription resources, the
// app's programmatic ones (GET /dapr/subscribe or ListTopicSubscriptions)
// and, while their streams are open, streaming subscriptions. Routing rules
// are CEL expressions over `event`, compiled once and evaluated in order
// with the default route last. For each subscription a consumer opens the
// plugin's PullMessages stream, names the topic, and for every message:
// parses the CloudEvent (or wraps a raw payload), drops expired events,
// picks the route, and delivers to the app (HTTP POST /<route> with
// application/cloudevents+json, or AppCallback.OnTopicEvent; bulk
// subscriptions batch messages into one call) under the inbound Retrier. The
// app's answer decides: success or DROP → ack (DROP also goes to the
// deadLetterTopic), 404 / Unimplemented → ack, anything else → retried, then
// the dead-letter topic if set, else a nack on the stream so the broker
// redelivers. Stop drains in-flight deliveries and closes the streams.
//
//	app ─publish─▶ API ─envelope─▶ plugin.Publish
//	plugin.PullMessages ─msg─▶ consumer ─route─▶ deliverer ─▶ app / stream
//	                    ◀─ack/nack──────────────────────────┘
package pubsub
