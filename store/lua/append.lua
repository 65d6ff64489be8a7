-- Append events to a customer stream and its partition feed in one step, with dedup, optional optimistic
-- concurrency, and (for usage) a reference to the rate card as it stands at this instant.
-- KEYS: 1 customer log, 2 partition feed, 3 partition's account set, 4 rate pointers of the tenant in this
--       partition, 5 dedup key (optional), 6.. the customer's week buckets of a bare id (optional; 6 = this week's;
--       while the previous layouts are looked up, the first half in this layout, the second half the same weeks in
--       the previous one, store/dedup.py)
-- ARGV: 1 encoded account ref, 2 dedup ttl seconds, 3 dedup value, 4 expected last log id ('' = any),
--       5 event name whose rate card to attach ('' = none), 6.. encoded events
-- With week buckets (a bare id, store/dedup.py): ARGV 2 is the unix time this week's bucket expires at, ARGV 3 the
-- id's 12-byte digest, followed by its 16-byte one while the previous layouts are looked up: the 12 bytes are looked
-- up in the (first half of the) buckets and written to this week's, the 16 bytes looked up in the second half (the
-- previous layout, never written); KEYS 5 is then the id's marker in the older one-key layout, read (honoured until
-- it expires) and never written. With the 12-byte digest alone, KEYS 5 is any key of the account, never touched
-- (the store passes this week's bucket), and every bucket is of this layout.
-- Each feed entry carries `pl`, the customer-stream entry before it, so the fold can see a missing predecessor.
-- Returns {1, {ids}} appended | {0, seen-value} duplicate | {-1, last id} conflict
local bare = KEYS[6] ~= nil
local previous_layouts = bare and #ARGV[3] > 12
if KEYS[5] and (previous_layouts or not bare) then
  local seen = redis.call('GET', KEYS[5])
  if seen then return {0, seen} end
end
local half = previous_layouts and 5 + (#KEYS - 5) / 2 or #KEYS
for i = 6, #KEYS do
  local name = i <= half and string.sub(ARGV[3], 1, 12) or string.sub(ARGV[3], 13)
  if redis.call('HEXISTS', KEYS[i], name) == 1 then return {0, ''} end
end
local previous = stream_end(KEYS[1])
if ARGV[4] ~= '' and previous ~= ARGV[4] then return {-1, previous} end
local digest = false
if ARGV[5] ~= '' then digest = redis.call('HGET', KEYS[4], ARGV[5]) end
local ids = {}
for i = 6, #ARGV do
  local id
  if digest then
    id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i], 'r', digest)
    redis.call('XADD', KEYS[2], '*', 'c', ARGV[1], 'l', id, 'e', ARGV[i], 'r', digest, 'pl', previous)
  else
    id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
    redis.call('XADD', KEYS[2], '*', 'c', ARGV[1], 'l', id, 'e', ARGV[i], 'pl', previous)
  end
  previous = id
  ids[#ids + 1] = id
end
redis.call('SADD', KEYS[3], ARGV[1])
if KEYS[6] then
  redis.call('HSET', KEYS[6], string.sub(ARGV[3], 1, 12), '')
  -- GT alone never sets an expiry on a bucket just created (no TTL counts as infinite): NX does that
  if redis.call('EXPIREAT', KEYS[6], ARGV[2], 'GT') == 0 then redis.call('EXPIREAT', KEYS[6], ARGV[2], 'NX') end
elseif KEYS[5] then
  redis.call('SET', KEYS[5], ARGV[3] .. '|' .. ids[1], 'EX', ARGV[2])
end
return {1, ids}
