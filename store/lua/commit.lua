-- Write folded snapshots, their clock schedule, the alert transitions they caused, the accounts quarantined in
-- the batch and the partition checkpoint together, only for the lease holder and only from the checkpoint the
-- batch was read at. A snapshot is never moved backwards, and a quarantined one is left to the operator.
-- KEYS: 1 lease, 2 checkpoint, 3 due schedule, 4 count of feed entries folded, 5 alerts stream,
--       6 alert keys already emitted (sorted set), 7 quarantine hash, 8.. snapshot hashes (the folded accounts',
--       then the quarantined accounts')
-- ARGV: 1 lease value, 2 expected checkpoint, 3 new checkpoint, 4 folded-at, 5 feed entries in the batch,
--       6 number of alert transitions, 7 number of accounts quarantined, then per transition: key, payload, ms;
--       then per folded account: position, state, encoded account ref, next due ms ('' = nothing due);
--       then per quarantined account: position ('' = keep the snapshot), state, encoded ref, record, reason
-- Returns 1 committed | -1 lease lost | -2 checkpoint moved
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local current = redis.call('GET', KEYS[2]) or '0-0'
if current ~= ARGV[2] then return -2 end
local function after(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local function may_write(key, position)
  local snap = redis.call('HMGET', key, 'p', 'q')
  return not snap[2] and not (snap[1] and after(snap[1], position))
end
local transitions, quarantined = tonumber(ARGV[6]), tonumber(ARGV[7])
for t = 0, transitions - 1 do
  local j = 8 + t * 3
  if redis.call('ZADD', KEYS[6], 'NX', ARGV[j + 2], ARGV[j]) == 1 then
    redis.call('XADD', KEYS[5], '*', 'k', ARGV[j], 'a', ARGV[j + 1])
  end
end
local base = 8 + transitions * 3
local folded = #KEYS - 7 - quarantined
for i = 0, folded - 1 do
  local key, j = KEYS[8 + i], base + i * 4
  if may_write(key, ARGV[j]) then
    redis.call('HSET', key, 'p', ARGV[j], 's', ARGV[j + 1], 't', ARGV[4])
    if ARGV[j + 3] == '' then
      redis.call('ZREM', KEYS[3], ARGV[j + 2])
    else
      redis.call('ZADD', KEYS[3], ARGV[j + 3], ARGV[j + 2])
    end
  end
end
base = base + folded * 4
for i = 0, quarantined - 1 do
  local key, j = KEYS[8 + folded + i], base + i * 5
  if ARGV[j] ~= '' and may_write(key, ARGV[j]) then
    redis.call('HSET', key, 'p', ARGV[j], 's', ARGV[j + 1], 't', ARGV[4])
  end
  redis.call('HSET', key, 'q', ARGV[j + 4])
  redis.call('HSET', KEYS[7], ARGV[j + 2], ARGV[j + 3])
  redis.call('ZREM', KEYS[3], ARGV[j + 2])
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('INCRBY', KEYS[4], ARGV[5])
return 1
