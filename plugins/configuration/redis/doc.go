// Package main is the configuration.redis plugin: a configuration store on
// Redis, storing items as Dapr's configuration.redis does.
//
// Data flow: the SDK (plugins/sdk, service
// outrigger.components.v1.ConfigurationStore) hands Get and Subscribe to
// Store. An item is a Redis string key whose value is "value||version"
// (a value with no "||" has an empty version). Get reads the named keys
// (or SCANs every key) in one pipeline. Subscribe listens to Redis keyspace
// notifications (__keyspace@<db>__:<key>, or a pattern for every key), which
// Init switches on with CONFIG SET notify-keyspace-events when they are off;
// it reports ready once Redis confirms the subscription, then for each event
// re-reads the key and passes the item on (deleted or expired keys are
// reported with an empty value).
package main
