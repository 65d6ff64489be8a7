-- Queue webhook deliveries and move the sender's checkpoint, only while the caller still holds the sender lease.
-- KEYS (all of the sender's slot, `{webhooks}`): 1 lease, 2 due set, 3 the partition's webhook checkpoint,
--       then per delivery: delivery hash, tenant's deliveries set
-- ARGV: 1 lease value, 2 checkpoint, 3 now ms, then per delivery: id, encoded delivery, created ms
-- Returns 1, or 0 when the lease is not the caller's (nothing written).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local n = (#KEYS - 3) / 2
for i = 1, n do
  local id = ARGV[3 + (i - 1) * 3 + 1]
  redis.call('HSETNX', KEYS[3 + (i - 1) * 2 + 1], 'd', ARGV[3 + (i - 1) * 3 + 2])
  redis.call('ZADD', KEYS[2], 'NX', ARGV[3], id)
  redis.call('ZADD', KEYS[3 + (i - 1) * 2 + 2], 'NX', ARGV[3 + (i - 1) * 3 + 3], id)
end
redis.call('SET', KEYS[3], ARGV[2])
return 1
