-- Read a customer's snapshot and, only when it is more than ARGV[1] ms behind the log, the log entries it has not
-- folded yet (with the rate cards they refer to). The snapshot is as old as the oldest entry it has not folded: it
-- is the log's state as it stood until that entry was appended, whose stream id carries the millisecond of its
-- append by this server's clock, the clock read here (TIME). No unfolded entry: the snapshot is the log's state.
-- KEYS: 1 snapshot hash, 2 customer log, 3 partition's rate card blobs
-- ARGV: 1 the largest age (ms) at which the snapshot alone answers
-- Returns {position, state, folded_at, tail, {digest, blob, ...}, quarantined reason or false, 1 when the snapshot
-- alone answers (tail empty) else 0}
local snap = redis.call('HMGET', KEYS[1], 'p', 's', 't', 'q')
local position = snap[1] or '0-0'
if snap[4] then
  return {position, snap[2], snap[3], {}, {}, snap[4], 1}
end
local first = redis.call('XRANGE', KEYS[2], '(' .. position, '+', 'COUNT', 1)
if #first == 0 then
  return {position, snap[2], snap[3], {}, {}, false, 1}
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local appended_ms = tonumber(string.match(first[1][1], '^(%d+)'))
if now_ms - appended_ms <= tonumber(ARGV[1]) then
  return {position, snap[2], snap[3], {}, {}, false, 1}
end
local tail, blobs = unfolded_tail(KEYS[2], KEYS[3], position)
return {position, snap[2], snap[3], tail, blobs, false, 0}
