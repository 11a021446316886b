// Package admin is the sidecar's Envoy-style admin endpoint (--admin-port,
// loopback only by default). Each page answers JSON, or an aligned plain-text
// table for humans with ?format=text (or an Accept header without JSON):
//
//	/members      gossip members: app id, internal address, state, actor types
//	/clusters     per target app: instances and requests in flight
//	/plugins      plugin processes: pid, state, restarts, components served
//	/config_dump  the effective options and resources, secrets redacted
//	/ready        200 once the sidecar is ready, else 503
//
// Pages are Sources: functions the wiring passes in, read per request, so the
// admin package knows nothing of the parts it shows.
package admin
