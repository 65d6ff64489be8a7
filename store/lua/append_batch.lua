-- Append the events of several commands on one customer in one step (a group commit), all or nothing: only if
-- the customer stream still ends at the expected position and no command's idempotency key was seen before.
-- Each command keeps its own dedup key, set as append.lua sets it (value .. '|' .. its first entry id).
-- A conflict marks the account contended for a while; a success says whether it is (the winner then stops
-- serving the account from memory, so every process reads before it decides: no process outruns the others).
-- KEYS: 1 customer log, 2 partition feed, 3 partition's account set, 4 contention marker,
--       5.. dedup keys of the commands that have one
-- ARGV: 1 encoded account ref, 2 dedup ttl seconds, 3 expected last log id, 4 contention marker ttl ms,
--       then per command: event count n, index of its dedup key in KEYS (0 = none), dedup value, n encoded events
-- Feed entries carry `pl` (the customer-stream entry before them) exactly as append.lua writes them.
-- Returns {1, {{ids of command 1}, {ids of command 2}, ...}, contended 0|1} appended
--       | {0, command number, seen-value} duplicate | {-1, last id} conflict
local previous = stream_end(KEYS[1])
if previous ~= ARGV[3] then
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])
  return {-1, previous}
end
local i, command = 5, 0
while i <= #ARGV do
  command = command + 1
  local key = tonumber(ARGV[i + 1])
  if key > 0 then
    local seen = redis.call('GET', KEYS[key])
    if seen then return {0, command, seen} end
  end
  i = i + 3 + tonumber(ARGV[i])
end
local appended = {}
i = 5
while i <= #ARGV do
  local count, key, ids = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), {}
  for e = i + 3, i + 2 + count do
    local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[e])
    redis.call('XADD', KEYS[2], '*', 'c', ARGV[1], 'l', id, 'e', ARGV[e], 'pl', previous)
    previous = id
    ids[#ids + 1] = id
  end
  if key > 0 then redis.call('SET', KEYS[key], ARGV[i + 2] .. '|' .. ids[1], 'EX', ARGV[2]) end
  appended[#appended + 1] = ids
  i = i + 3 + count
end
redis.call('SADD', KEYS[3], ARGV[1])
return {1, appended, redis.call('EXISTS', KEYS[4])}
