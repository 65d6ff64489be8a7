-- Read a customer's snapshot and, unless ARGV[1] is 'cached' or the account is quarantined, the log entries it
-- has not folded yet, with the rate cards those entries refer to.
-- KEYS: 1 snapshot hash, 2 customer log, 3 partition's rate card blobs
-- Returns {position, state, folded_at, tail, {digest, blob, ...}, quarantined reason or false}
local snap = redis.call('HMGET', KEYS[1], 'p', 's', 't', 'q')
local position = snap[1] or '0-0'
local tail = {}
local blobs = {}
if ARGV[1] ~= 'cached' and not snap[4] then
  tail, blobs = unfolded_tail(KEYS[2], KEYS[3], position)
end
return {position, snap[2], snap[3], tail, blobs, snap[4]}
