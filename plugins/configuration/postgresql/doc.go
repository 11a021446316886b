// Package main is the configuration.postgresql plugin: a configuration store
// on a PostgreSQL table, with changes pushed through LISTEN/NOTIFY.
//
// Data flow: the SDK (plugins/sdk, service
// outrigger.components.v1.ConfigurationStore) hands Get and Subscribe to
// Store. Items are rows (key, value, version, metadata jsonb) of the
// configured table. Init creates the table if it is missing, plus a trigger
// that runs pg_notify(<channel>, key) after every insert, update or delete
// (the channel is named for the table). Get is one SELECT over a pgx pool.
// Subscribe opens its own connection, runs LISTEN and reports ready once the
// server has acknowledged it; every notification names a key, which is
// filtered against the subscription's keys, re-read and passed on (a deleted
// row is reported with an empty value).
package main
