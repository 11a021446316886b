// Package main is the bindings.cron plugin: an input binding firing on a
// robfig/cron-style schedule, as Dapr's bindings.cron.
//
// Data flow: Init parses the schedule (schedule.go: 5 or 6 fields,
// descriptors, "@every <duration>"). The sidecar opens a Read stream; Read
// sleeps until the next tick, then hands the SDK one event with metadata
// timeZone and readTimeUTC, which the sidecar posts to the app. Ticks are
// absolute times (@every ticks are multiples of the duration since the Unix
// epoch), and each instance remembers the last tick it fired, so a stream
// that is reopened, or a plugin that restarts, never fires a tick twice.
package main
