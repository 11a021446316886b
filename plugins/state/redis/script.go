package main

import "github.com/redis/go-redis/v9"

// Every write goes through one Lua script so that the etag checks and the
// writes happen atomically on the server. A call carries N operations:
// KEYS[i] is the key of operation i and ARGV holds five values per operation:
//
//	kind   "s" (set) or "d" (delete)
//	etag   expected version, "" for none
//	first  "1" when a set without etag must not overwrite an existing key
//	data   the value (sets only)
//	ttl    milliseconds until expiry, "0" for none (sets only)
//
// All checks run before any write; if one fails the script returns an error
// reply starting with mismatchPrefix and nothing is written. A single Set or
// Delete is a call with N=1; a transaction is one call with all its operations.
// Each key is a hash {data, version}; version is incremented on every write
// and is the etag.
const writeSrc = `
local n = #KEYS
for i = 1, n do
  local b = (i - 1) * 5
  local etag, first = ARGV[b + 2], ARGV[b + 3]
  if etag ~= "" or first == "1" then
    local ver = redis.call("HGET", KEYS[i], "version")
    if etag ~= "" then
      if ver ~= etag then
        return redis.error_reply("ETAGMISMATCH " .. KEYS[i])
      end
    elseif ver then
      return redis.error_reply("ETAGMISMATCH " .. KEYS[i])
    end
  end
end
for i = 1, n do
  local b = (i - 1) * 5
  if ARGV[b + 1] == "d" then
    redis.call("DEL", KEYS[i])
  else
    redis.call("HSET", KEYS[i], "data", ARGV[b + 4])
    redis.call("HINCRBY", KEYS[i], "version", 1)
    local ttl = tonumber(ARGV[b + 5])
    if ttl > 0 then
      redis.call("PEXPIRE", KEYS[i], ttl)
    else
      redis.call("PERSIST", KEYS[i])
    end
  end
end
return n
`

// mismatchPrefix starts the error reply of writeSrc when an etag check fails.
const mismatchPrefix = "ETAGMISMATCH"

func newWriteScript() *redis.Script { return redis.NewScript(writeSrc) }
