-- Extend a lock's lease only if it is still ours: set KEYS[1]'s TTL to ARGV[2] ms when it
-- holds ARGV[1] (our token). 1 = extended, 0 = the lock is not ours any more.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
