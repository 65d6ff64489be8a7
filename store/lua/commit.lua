-- Write folded snapshots, their clock schedule, the alert transitions they caused and the partition
-- checkpoint together, only for the lease holder and only from the checkpoint the batch was read at.
-- KEYS: 1 lease, 2 checkpoint, 3 due schedule, 4 count of feed entries folded, 5 alerts stream,
--       6 alert keys already emitted (sorted set), 7.. snapshot hashes
-- ARGV: 1 lease value, 2 expected checkpoint, 3 new checkpoint, 4 folded-at, 5 feed entries in the batch,
--       6 number of alert transitions, then per transition: key, payload, ms;
--       then per snapshot: position, state, encoded account ref, next due ms ('' = nothing due)
-- Returns 1 committed | -1 lease lost | -2 checkpoint moved
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local current = redis.call('GET', KEYS[2]) or '0-0'
if current ~= ARGV[2] then return -2 end
local transitions = tonumber(ARGV[6])
for t = 0, transitions - 1 do
  local j = 7 + t * 3
  if redis.call('ZADD', KEYS[6], 'NX', ARGV[j + 2], ARGV[j]) == 1 then
    redis.call('XADD', KEYS[5], '*', 'k', ARGV[j], 'a', ARGV[j + 1])
  end
end
local base = 7 + transitions * 3
for i = 7, #KEYS do
  local j = base + (i - 7) * 4
  redis.call('HSET', KEYS[i], 'p', ARGV[j], 's', ARGV[j + 1], 't', ARGV[4])
  if ARGV[j + 3] == '' then
    redis.call('ZREM', KEYS[3], ARGV[j + 2])
  else
    redis.call('ZADD', KEYS[3], ARGV[j + 3], ARGV[j + 2])
  end
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('INCRBY', KEYS[4], ARGV[5])
return 1
