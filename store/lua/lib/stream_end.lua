-- Shared by the scripts that check where a customer stream ends (prepended by store/scripts.py).
-- The id of the stream's last entry; for a stream emptied by the archive (or a dlq drop), the last id it ever
-- generated (XINFO keeps it); '0-0' for a stream that never existed.
local function stream_end(key)
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if #last > 0 then return last[1][1] end
  if redis.call('EXISTS', key) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do if info[i] == 'last-generated-id' then return info[i + 1] end end
  return '0-0'
end
