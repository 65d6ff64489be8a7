-- Move queued deliveries to new due times (a claim while attempted, or a later turn), if the lease is ours.
-- Only deliveries still queued move: one taken off the queue meanwhile is not put back.
-- KEYS: 1 lease, 2 due set; ARGV: 1 lease value, then pairs of (due ms, delivery id)
-- Returns 1, or 0 when the lease is not the caller's (nothing written).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], 'XX', ARGV[i], ARGV[i + 1])
end
return 1
