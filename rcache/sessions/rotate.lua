-- Move a session to a new id atomically (standalone Redis and Sentinel; both keys must be
-- in one slot, which two random ids on Cluster are not: see rcache/sessions/_ops.py).
--
-- KEYS[1]  the session hash under its current id      KEYS[2]  the same under the new id
-- ARGV[1]  the session's creation token (to recognise a retried call that already ran)
--
-- Returns 1 (moved; the hash keeps its fields, creation time and TTL), 0 (the session no
-- longer exists) or -1 (the new id is taken by another session).
if redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('HGET', KEYS[2], '\0token') == ARGV[1] then
    return 1
  end
  return -1
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
