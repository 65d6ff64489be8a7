-- Append usage events with bare ids, of customers of one partition and one tenant, in one step: each event is
-- deduplicated and appended alone, in ARGV order, exactly as append.lua does for one event with a bare id in this
-- dedup layout only (store/dedup.py: the store cannot hold the previous layouts); a repeated id within the call is
-- a duplicate of the first.
-- KEYS: 1 partition feed, 2 partition's account set, 3 rate pointers of the tenant in this partition,
--       then per event 1 + ARGV 2 keys: its customer log, then its week buckets (this week's first)
-- ARGV: 1 unix time this week's bucket expires at, 2 buckets per event,
--       then per event 4: encoded account ref, event name whose rate card to attach, encoded event, 12-byte digest
-- Each feed entry carries `pl`, the customer-stream entry before it, as append.lua writes it. An account is added
-- to the set, a bucket given its expiry and a customer stream's end read once per call (the same result as once
-- per event: the entry a call added last is where the stream ends).
-- Returns {id of each event's entry, '' for a duplicate}, in event order
local buckets = tonumber(ARGV[2])
local stride = 1 + buckets
local rates = {[''] = false}  -- no event name: no rate card (as append.lua)
local ids = {}
local added, expiring, last = {}, {}, {}  -- by this call already: accounts added to the set, buckets given their
-- expiry, each customer stream's last entry
for e = 0, (#ARGV - 2) / 4 - 1 do
  local k, a = 4 + e * stride, 3 + e * 4
  local ref, name, event, digest = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local seen = false
  for i = k + 1, k + buckets do
    if redis.call('HEXISTS', KEYS[i], digest) == 1 then seen = true break end
  end
  if seen then
    ids[#ids + 1] = ''
  else
    local previous = last[KEYS[k]] or stream_end(KEYS[k])
    if rates[name] == nil then rates[name] = redis.call('HGET', KEYS[3], name) end
    local id
    if rates[name] then
      id = redis.call('XADD', KEYS[k], '*', 'e', event, 'r', rates[name])
      redis.call('XADD', KEYS[1], '*', 'c', ref, 'l', id, 'e', event, 'r', rates[name], 'pl', previous)
    else
      id = redis.call('XADD', KEYS[k], '*', 'e', event)
      redis.call('XADD', KEYS[1], '*', 'c', ref, 'l', id, 'e', event, 'pl', previous)
    end
    if not added[ref] then redis.call('SADD', KEYS[2], ref) added[ref] = true end
    redis.call('HSET', KEYS[k + 1], digest, '')
    if not expiring[KEYS[k + 1]] then
      -- GT alone never sets an expiry on a bucket just created (no TTL counts as infinite): NX does that
      if redis.call('EXPIREAT', KEYS[k + 1], ARGV[1], 'GT') == 0 then redis.call('EXPIREAT', KEYS[k + 1], ARGV[1], 'NX') end
      expiring[KEYS[k + 1]] = true
    end
    last[KEYS[k]] = id
    ids[#ids + 1] = id
  end
end
return ids
