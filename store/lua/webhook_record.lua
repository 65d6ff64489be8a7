-- Save a delivery's state after an attempt and reschedule it ('' = take it off the queue), if the lease is ours.
-- A delivery taken off the queue (delivered or dead) is indexed by when it finished, for retention.
-- KEYS: 1 lease, 2 due set, 3 delivery hash, 4 finished set
-- ARGV: 1 lease value, 2 delivery id, 3 encoded delivery, 4 next attempt ms or '', 5 now ms
-- Returns 1, or 0 when the lease is not the caller's (nothing written).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[3], 'd', ARGV[3])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[2])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
end
return 1
