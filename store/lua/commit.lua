-- Write folded snapshots with the ledger entries their fold wrote, their clock schedule, the alert transitions they
-- caused, the accounts quarantined in the batch and the partition checkpoint together, only for the lease holder and
-- only from the checkpoint the batch was read at, and only when every account's stored snapshot is still the one its
-- fold started from (the fold may have started from a cached copy: a snapshot an operator's rebuild or release, or
-- another holder, wrote meanwhile refuses the whole batch, which is then read and folded again). A snapshot (and its
-- ledger) is never moved backwards, and a quarantined one is left to the operator.
-- KEYS: 1 lease, 2 checkpoint, 3 due schedule, 4 count of feed entries folded, 5 alerts stream,
--       6 alert keys already emitted (sorted set), 7 quarantine hash, 8.. per account three keys: snapshot hash,
--       ledger hash, ledger ids hash (the folded accounts', then the quarantined accounts')
-- ARGV: 1 lease value, 2 expected checkpoint, 3 new checkpoint, 4 folded-at, 5 feed entries in the batch,
--       6 number of alert transitions, 7 number of accounts quarantined, then per transition: key, payload, ms;
--       then per folded account: position, state, encoded account ref, next due ms ('' = nothing due), base, ledger;
--       then per quarantined account: position ('' = keep the snapshot), state, encoded ref, record, reason, base,
--       ledger; where base = the stored state the fold started from ('' = no snapshot stored) and
--       ledger = n, then n times: entry field, encoded entry, id field, seq; then m, then m times the
--       entry field, id field and seq of a stored entry leaving Redis (its id field goes only if it still names it)
-- Returns 1 committed | -1 lease lost | -2 checkpoint moved | -3 a snapshot is not the one its fold started from
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
-- Writes the ledger found at ARGV[j] (when `write`) and returns the index just after it.
local function ledger(k, j, write)
  local n = tonumber(ARGV[j])
  if write then
    for e = 0, n - 1 do
      local a = j + 1 + e * 4
      redis.call('HSET', KEYS[k + 1], ARGV[a], ARGV[a + 1])
      redis.call('HSET', KEYS[k + 2], ARGV[a + 2], ARGV[a + 3])
    end
  end
  j = j + 1 + n * 4
  local m = tonumber(ARGV[j])
  if write then
    for e = 0, m - 1 do
      local a = j + 1 + e * 3
      redis.call('HDEL', KEYS[k + 1], ARGV[a])
      if redis.call('HGET', KEYS[k + 2], ARGV[a + 1]) == ARGV[a + 2] then
        redis.call('HDEL', KEYS[k + 2], ARGV[a + 1])
      end
    end
  end
  return j + 1 + m * 3
end
local transitions, quarantined = tonumber(ARGV[6]), tonumber(ARGV[7])
local folded = (#KEYS - 7) / 3 - quarantined
-- Every account's base is checked before anything is written.
local j = 8 + transitions * 3
for i = 0, folded + quarantined - 1 do
  local base = i < folded and j + 4 or j + 5
  if (redis.call('HGET', KEYS[8 + i * 3], 's') or '') ~= ARGV[base] then return -3 end
  j = ledger(0, base + 1, false)
end
for t = 0, transitions - 1 do
  local j = 8 + t * 3
  if redis.call('ZADD', KEYS[6], 'NX', ARGV[j + 2], ARGV[j]) == 1 then
    redis.call('XADD', KEYS[5], '*', 'k', ARGV[j], 'a', ARGV[j + 1])
  end
end
j = 8 + transitions * 3
for i = 0, folded - 1 do
  local k = 8 + i * 3
  local write = may_write(KEYS[k], ARGV[j])
  if write then
    redis.call('HSET', KEYS[k], 'p', ARGV[j], 's', ARGV[j + 1], 't', ARGV[4])
    if ARGV[j + 3] == '' then
      redis.call('ZREM', KEYS[3], ARGV[j + 2])
    else
      redis.call('ZADD', KEYS[3], ARGV[j + 3], ARGV[j + 2])
    end
  end
  j = ledger(k, j + 5, write)
end
for i = 0, quarantined - 1 do
  local k = 8 + (folded + i) * 3
  local write = ARGV[j] ~= '' and may_write(KEYS[k], ARGV[j])
  if write then
    redis.call('HSET', KEYS[k], 'p', ARGV[j], 's', ARGV[j + 1], 't', ARGV[4])
  end
  redis.call('HSET', KEYS[k], 'q', ARGV[j + 4])
  redis.call('HSET', KEYS[7], ARGV[j + 2], ARGV[j + 3])
  redis.call('ZREM', KEYS[3], ARGV[j + 2])
  j = ledger(k, j + 6, write)
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('INCRBY', KEYS[4], ARGV[5])
return 1
