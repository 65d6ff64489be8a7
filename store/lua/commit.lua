-- Write folded snapshots and advance the partition checkpoint together, only for the lease holder and only
-- from the checkpoint the batch was read at.
-- KEYS: 1 lease, 2 checkpoint, 3.. snapshot hashes
-- ARGV: 1 lease value, 2 expected checkpoint, 3 new checkpoint, 4 folded-at, then per snapshot: position, state
-- Returns 1 committed | -1 lease lost | -2 checkpoint moved
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local current = redis.call('GET', KEYS[2]) or '0-0'
if current ~= ARGV[2] then return -2 end
for i = 3, #KEYS do
  local j = 5 + (i - 3) * 2
  redis.call('HSET', KEYS[i], 'p', ARGV[j], 's', ARGV[j + 1], 't', ARGV[4])
end
redis.call('SET', KEYS[2], ARGV[3])
return 1
