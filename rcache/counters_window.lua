-- Add to a counter and start its window on the first hit: the TTL is set only when the
-- key has none, so the window is fixed from the first hit and the key expires with it.
-- KEYS[1] counter; ARGV[1] increment, ARGV[2] window (ms). Returns {count, ms left}.
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  left = tonumber(ARGV[2])
end
return {n, left}
