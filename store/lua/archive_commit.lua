-- Commit one archive segment to the partition's manifest, only for the archive lease holder and only if no
-- account's archived span moved since the segment was cut (a zombie's or a repeated round's commit is refused).
-- KEYS: 1 archive lease, 2 segments hash, 3 archived spans hash, 4 pending (untrimmed) segments set
-- ARGV: 1 lease value, 2 segment number, 3 encoded segment record,
--       then per account: encoded ref, expected span `first|through` ('' = none yet), new span
-- Returns 1 committed | -1 lease lost | -2 the segment number is taken or an account's span moved
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return -2 end
for i = 4, #ARGV, 3 do
  if (redis.call('HGET', KEYS[3], ARGV[i]) or '') ~= ARGV[i + 1] then return -2 end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
for i = 4, #ARGV, 3 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
end
redis.call('SADD', KEYS[4], ARGV[2])
return 1
