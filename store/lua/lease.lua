-- Take or renew a partition lease. A new holder gets a fresh fencing token; the holder renews its own.
-- KEYS: 1 lease, 2 fence counter
-- ARGV: 1 holder name, 2 ttl ms, 3 lease value held now ('' = none)
-- Returns the lease value held after the call, or false when another holder has it.
local current = redis.call('GET', KEYS[1])
if current then
  if current ~= ARGV[3] then return false end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return current
end
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. '#' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
