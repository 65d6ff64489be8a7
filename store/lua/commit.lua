-- Write folded snapshots, their clock schedule and the partition checkpoint together, only for the lease
-- holder and only from the checkpoint the batch was read at.
-- KEYS: 1 lease, 2 checkpoint, 3 due schedule, 4 count of feed entries folded, 5.. snapshot hashes
-- ARGV: 1 lease value, 2 expected checkpoint, 3 new checkpoint, 4 folded-at, 5 feed entries in the batch,
--       then per snapshot: position, state, encoded account ref, next due ms ('' = nothing due)
-- Returns 1 committed | -1 lease lost | -2 checkpoint moved
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local current = redis.call('GET', KEYS[2]) or '0-0'
if current ~= ARGV[2] then return -2 end
for i = 5, #KEYS do
  local j = 6 + (i - 5) * 4
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
