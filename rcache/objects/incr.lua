-- Add ARGV[1] to the integer at KEYS[1], keeping its TTL; nil when the key does not exist
-- (the caller raises ValueError, as Django's incr does). One atomic round trip instead of
-- EXISTS then INCRBY, so a key that expires in between is never recreated as a counter.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
return redis.call('INCRBY', KEYS[1], ARGV[1])
