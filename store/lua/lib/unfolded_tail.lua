-- The customer log's entries after `position` and the rate card blobs they name ({digest, blob, ...}), each once.
-- Used by read.lua and read_within.lua: log_key and blobs_key are their KEYS[2] and KEYS[3].
local function unfolded_tail(log_key, blobs_key, position)
  local tail = redis.call('XRANGE', log_key, '(' .. position, '+')
  local blobs = {}
  local seen = {}
  for _, entry in ipairs(tail) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'r' and not seen[fields[i + 1]] then
        seen[fields[i + 1]] = true
        blobs[#blobs + 1] = fields[i + 1]
        blobs[#blobs + 1] = redis.call('HGET', blobs_key, fields[i + 1])
      end
    end
  end
  return tail, blobs
end
