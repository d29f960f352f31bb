-- Give up a page's single-flight lease without storing anything.
--
-- KEYS[1]  the lease key; ARGV[1] our token; ARGV[2] the "pass" time in ms.
--
-- Only a lease that still holds our token is touched (ours may have run out and been taken
-- over). With ARGV[2] > 0 the lease turns into a "pass" marker for that long: the response
-- was not stored, so callers waiting for it, and newcomers, run the view themselves at once
-- instead of queueing behind each other. Returns 1 when the lease was still ours.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], 'pass', 'PX', ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return 1
