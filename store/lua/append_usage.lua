-- Append usage events with bare ids, of customers of one partition and one tenant, in one step: each event is
-- deduplicated and appended alone, in ARGV order, with what append.lua does for one event with a bare id in this
-- dedup layout only (store/dedup.py: the store cannot hold the previous layouts). The caller sends each id of a
-- customer once per call (a repeat within a call is a duplicate of the first whatever the first is).
-- KEYS: 1 partition feed, 2 partition's account set, 3 rate pointers of the tenant in this partition,
--       then ARGV 3 customer logs, then ARGV 2 week buckets (this week's first) per group: a customer and a shard
-- ARGV: 1 unix time this week's bucket expires at, 2 buckets per group, 3 customers, then each customer's encoded
--       account ref (customer c: ARGV[3 + c], its log KEYS[3 + c]), then the groups' count and per group its
--       events' count n, followed (when n > 1) by their n digests, then per event 5: its customer, its group (g:
--       buckets KEYS[3 + customers + (g - 1) * buckets + 1 ..]), event name whose rate card to attach, encoded
--       event, 12-byte digest
-- A group of one event looks its digest up bucket by bucket (HEXISTS, as append.lua); a larger one all its
-- digests at its first event (HMGET per bucket), and writes them to this week's bucket at the end (one HSET).
-- A bucket is given its expiry once per call (a later one kept, as EXPIREAT GT then NX), a customer added to the
-- account set once, its stream's end read once (the entry a call added last is where it ends). Each feed entry
-- carries `pl`, the customer-stream entry before it, as append.lua writes it.
-- Returns {id of each event's entry, '' for a duplicate}, in event order
local expiry, buckets, customers = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local sizes, starts = {}, {}  -- per group: its events' count, and where its digests start in ARGV (n > 1)
local a = 5 + customers
for g = 1, tonumber(ARGV[4 + customers]) do
  sizes[g] = tonumber(ARGV[a])
  if sizes[g] > 1 then starts[g] = a + 1 a = a + sizes[g] end
  a = a + 1
end
local first_event = a

local function bucket(g) return 3 + customers + (g - 1) * buckets + 1 end

local function expire(key)
  local expires = redis.call('EXPIRETIME', key)
  if expires == -1 or expires < expiry then redis.call('EXPIREAT', key, expiry) end
end

local function lookup(g)  -- the group's digests already in one of its buckets
  local found, digests = {}, {}
  for n = 1, sizes[g] do digests[n] = ARGV[starts[g] + n - 1] end
  for i = bucket(g), bucket(g) + buckets - 1 do
    local replies, left = redis.call('HMGET', KEYS[i], unpack(digests)), nil
    for n, digest in ipairs(digests) do
      if replies[n] then found[digest], left = true, left or {} end
    end
    if left then
      for _, digest in ipairs(digests) do if not found[digest] then left[#left + 1] = digest end end
      if #left == 0 then break end
      digests = left
    end
  end
  return found
end

local rates = {[''] = false}  -- no event name: no rate card (as append.lua)
local ids, last, found, written = {}, {}, {}, {}
for e = 0, (#ARGV - first_event + 1) / 5 - 1 do
  local at = first_event + e * 5
  local c, g, name, event, digest = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  local seen = false
  if sizes[g] == 1 then
    for i = bucket(g), bucket(g) + buckets - 1 do
      if redis.call('HEXISTS', KEYS[i], digest) == 1 then seen = true break end
    end
  else
    if not found[g] then found[g] = lookup(g) end
    seen = found[g][digest]
  end
  if seen then
    ids[#ids + 1] = ''
  else
    local log, ref = KEYS[3 + c], ARGV[3 + c]
    local previous = last[c] or stream_end(log)
    if rates[name] == nil then rates[name] = redis.call('HGET', KEYS[3], name) end
    local id
    if rates[name] then
      id = redis.call('XADD', log, '*', 'e', event, 'r', rates[name])
      redis.call('XADD', KEYS[1], '*', 'c', ref, 'l', id, 'e', event, 'r', rates[name], 'pl', previous)
    else
      id = redis.call('XADD', log, '*', 'e', event)
      redis.call('XADD', KEYS[1], '*', 'c', ref, 'l', id, 'e', event, 'pl', previous)
    end
    if not last[c] then redis.call('SADD', KEYS[2], ref) end
    last[c] = id
    if sizes[g] == 1 then
      redis.call('HSET', KEYS[bucket(g)], digest, '')
      expire(KEYS[bucket(g)])
    else
      if not written[g] then written[g] = {} end
      written[g][#written[g] + 1] = digest
      written[g][#written[g] + 1] = ''
    end
    ids[#ids + 1] = id
  end
end
for g, fields in pairs(written) do
  redis.call('HSET', KEYS[bucket(g)], unpack(fields))
  expire(KEYS[bucket(g)])
end
return ids
