-- Trim the oldest entries of a partition's alerts stream, below an exclusive bound, and forget the keys they were
-- emitted under (the emitted-alerts sorted set) in the same step, so a key never outlives nor predeceases its notice.
-- KEYS: 1 alerts stream, 2 alert keys already emitted (sorted set); both of one partition
-- ARGV: 1 bound (a stream id: only entries below it go), 2 most entries to remove
-- Returns the number of entries removed
local entries = redis.call('XRANGE', KEYS[1], '-', '(' .. ARGV[1], 'COUNT', ARGV[2])
if #entries == 0 then return 0 end
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for f = 1, #fields, 2 do
    if fields[f] == 'k' then redis.call('ZREM', KEYS[2], fields[f + 1]) end
  end
end
local last = entries[#entries][1]
redis.call('XTRIM', KEYS[1], 'MINID', last)
redis.call('XDEL', KEYS[1], last)
return #entries
