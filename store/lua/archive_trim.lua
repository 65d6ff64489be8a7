-- Trim customer streams exactly up to their archived-through position (as the manifest holds it, never more),
-- for the archive lease holder only; optionally mark a segment's trimming done.
-- KEYS: 1 archive lease, 2 archived spans hash, 3 pending segments set, 4.. customer logs
-- ARGV: 1 lease value, 2 segment number whose trimming this call completes ('' = none),
--       3.. encoded ref of each log (in KEYS order)
-- Returns the number of entries removed, or -1 when the lease is lost
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local removed = 0
for i = 4, #KEYS do
  local span = redis.call('HGET', KEYS[2], ARGV[i - 1])
  if span then
    local through = string.match(span, '|(.+)$')
    removed = removed + redis.call('XTRIM', KEYS[i], 'MINID', through)  -- exact: every entry below it
    removed = removed + redis.call('XDEL', KEYS[i], through)  -- and the entry at it
  end
end
if ARGV[2] ~= '' then redis.call('SREM', KEYS[3], ARGV[2]) end
return removed
