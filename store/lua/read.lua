-- Read a customer's snapshot and, unless ARGV[1] is 'cached', the log entries it has not folded yet.
-- KEYS: 1 snapshot hash, 2 customer log
-- Returns {position, state, folded_at, tail}
local snap = redis.call('HMGET', KEYS[1], 'p', 's', 't')
local position = snap[1] or '0-0'
local tail = {}
if ARGV[1] ~= 'cached' then
  tail = redis.call('XRANGE', KEYS[2], '(' .. position, '+')
end
return {position, snap[2], snap[3], tail}
