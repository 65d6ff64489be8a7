-- Release a quarantined account: write its refolded snapshot, its clock schedule and the alert transitions the
-- refold caused, with the ledger entries it wrote, and clear the quarantine, only if neither its customer stream nor
-- its snapshot moved meanwhile.
-- KEYS: 1 customer log, 2 snapshot hash, 3 partition's quarantine hash, 4 due schedule, 5 alerts stream,
--       6 alert keys already emitted (sorted set), 7 ledger hash, 8 ledger ids hash
-- ARGV: 1 expected last log id, 2 expected snapshot position, 3 new position, 4 state, 5 folded-at,
--       6 encoded account ref, 7 next due ms ('' = nothing due), 8 number of alert transitions,
--       then per transition: key, payload, ms; then the number of ledger writes, then per write:
--       entry field, encoded entry, id field, seq; then the number of stored entries leaving Redis, then per
--       entry: entry field, id field, seq (its id field goes only if it still names that seq)
-- Returns 1 released | 0 not quarantined | -1 the stream or the snapshot moved (read again and retry)
local snap = redis.call('HMGET', KEYS[2], 'p', 'q')
if not snap[2] then return 0 end
local last_id = stream_end(KEYS[1])
if last_id ~= ARGV[1] or (snap[1] or '0-0') ~= ARGV[2] then return -1 end
for t = 0, tonumber(ARGV[8]) - 1 do
  local j = 9 + t * 3
  if redis.call('ZADD', KEYS[6], 'NX', ARGV[j + 2], ARGV[j]) == 1 then
    redis.call('XADD', KEYS[5], '*', 'k', ARGV[j], 'a', ARGV[j + 1])
  end
end
local j = 9 + tonumber(ARGV[8]) * 3
for e = 0, tonumber(ARGV[j]) - 1 do
  local a = j + 1 + e * 4
  redis.call('HSET', KEYS[7], ARGV[a], ARGV[a + 1])
  redis.call('HSET', KEYS[8], ARGV[a + 2], ARGV[a + 3])
end
j = j + 1 + tonumber(ARGV[j]) * 4
for e = 0, tonumber(ARGV[j]) - 1 do
  local a = j + 1 + e * 3
  redis.call('HDEL', KEYS[7], ARGV[a])
  if redis.call('HGET', KEYS[8], ARGV[a + 1]) == ARGV[a + 2] then redis.call('HDEL', KEYS[8], ARGV[a + 1]) end
end
redis.call('HSET', KEYS[2], 'p', ARGV[3], 's', ARGV[4], 't', ARGV[5])
redis.call('HDEL', KEYS[2], 'q')
redis.call('HDEL', KEYS[3], ARGV[6])
if ARGV[7] == '' then
  redis.call('ZREM', KEYS[4], ARGV[6])
else
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6])
end
return 1
