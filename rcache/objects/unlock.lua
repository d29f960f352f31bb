-- Release a lock only if it is still ours: delete KEYS[1] when it holds ARGV[1] (our token).
-- A lock whose lease ran out may belong to someone else by now; it is left alone. 1 = released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
