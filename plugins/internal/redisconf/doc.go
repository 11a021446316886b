// Package redisconf holds the Redis connection settings that Dapr's redis
// components share (redisHost, redisUsername, redisPassword, redisDB,
// enableTLS, redisType, failover/sentinel, retries, timeouts, pool sizes)
// and turns them into go-redis client options.
//
// Two shapes exist because the components differ on purpose:
//
//   - Settings (ReadConnection + ReadTuning, then UniversalOptions) is for
//     state.redis and pubsub.redis: one node, a cluster (comma-separated
//     redisHost, redisType=cluster) or a sentinel group (failover=true).
//     Integer timeouts are milliseconds, as Dapr reads them there; typed
//     value errors go to the caller's mdparse.Reader so the component can
//     interleave its own keys and report the first bad one.
//   - Standalone (and Node under it) is for lock.redis,
//     configuration.redis and bindings.redis: exactly one server and a
//     plain *redis.Client. Integer timeouts are whole seconds, and the
//     first bad value is returned at once.
//
// Data flow: plugin Init → parse(md) → redisconf → go-redis options →
// redis.NewUniversalClient / redis.NewClient (or Dial, which pings).
package redisconf
