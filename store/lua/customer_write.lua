-- Create, replace or delete one customer record, guarded by its version (one key: one slot).
-- KEYS: 1 customer record (hash: v = version, c = encoded customer)
-- ARGV: 1 'create' | 'replace' | 'delete'; 2 the version the caller read ('' on create); 3 encoded customer
-- Returns {1, new version} done (0 once deleted) | {0, version, encoded} the record is not as the caller thinks:
-- it exists (create), or it changed or is gone (replace, delete; version 0 when gone)
local version = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local stored = redis.call('HGET', KEYS[1], 'c') or ''
if ARGV[1] == 'create' then
  if version > 0 then return {0, version, stored} end
  redis.call('HSET', KEYS[1], 'v', 1, 'c', ARGV[3])
  return {1, 1}
end
if version == 0 or version ~= tonumber(ARGV[2]) then return {0, version, stored} end
if ARGV[1] == 'delete' then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
redis.call('HSET', KEYS[1], 'v', version + 1, 'c', ARGV[3])
return {1, version + 1}
