// Package main is the lock.sqlite plugin: Outrigger's embedded default
// distributed lock, kept in one SQLite file (modernc.org/sqlite, pure Go)
// that several sidecars on one machine share.
//
// Data flow: the SDK (plugins/sdk, service outrigger.components.v1.LockStore)
// hands TryLock and Unlock requests to Store. A lease is one row (resource_id,
// owner, expires_at in Unix milliseconds). TryLock is a single UPSERT whose
// update only fires when the existing row's lease has expired, so the
// database's write lock makes "is it free?" and "take it" one step for every
// process sharing the file. Unlock runs in a BEGIN IMMEDIATE transaction:
// read the row, compare owner and expiry, delete it only for its owner.
// Expired rows are swept at Init and every cleanupInterval.
package main
