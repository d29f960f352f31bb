-- Write the changed fields of a session in one round trip; never resurrect a deleted one.
--
-- KEYS[1]  the session hash
-- ARGV[1]  'update' (a session that was loaded) or 'create' (a new session)
-- ARGV[2]  'update': the TTL to set (ms), the idle timeout capped by the absolute deadline
--          the client learnt at the load; 'create': the idle timeout (ms)
-- ARGV[3]  absolute lifetime (ms; 'create' only)
-- ARGV[4]  creation token ('create' only): a random value stored with a new session, so a
--          retried 'create' recognises its own earlier write instead of reporting a collision
-- ARGV[5]  n, the number of field/value pairs to set; then the n pairs; then the
--          fields to delete
--
-- Returns 'created', 'saved', 'gone' (the session was deleted or has expired: nothing is
-- written) or 'collision' (a 'create' found another session under this id).
-- Setting fixed values and deleting fields can be applied twice with the same result, so
-- the adapter may retry this call after a lost connection.
-- The meta field names must match rcache/sessions/_layout.py.
local key = KEYS[1]
local ttl = ARGV[2]
local update = ARGV[1] == 'update'
if update then
  -- A hash without its creation time is not a session (load never serves one).
  if redis.call('HEXISTS', key, '\0created') == 0 then
    return 'gone'
  end
else
  -- Times come from the server's clock (TIME), as in every other writer of '\0created'.
  -- Arithmetic converts the strings itself (cheaper than tonumber() and math.floor()).
  local t = redis.call('TIME')
  local us = t[2] + 0
  local now = t[1] * 1000 + (us - us % 1000) / 1000
  local created
  local token = redis.call('HGET', key, '\0token')
  if token then
    if token ~= ARGV[4] then
      return 'collision'
    end
    created = redis.call('HGET', key, '\0created')
  elseif redis.call('EXISTS', key) == 1 then
    return 'collision'
  else
    created = now
    redis.call('HSET', key, '\0created', now, '\0token', ARGV[4])
  end
  local left = created + ARGV[3] - now
  if left <= 0 then
    redis.call('DEL', key)
    return 'gone'
  end
  if left < ttl + 0 then
    ttl = left
  end
end
-- unpack() is bounded by the Lua stack: long argument lists go in chunks.
local first = 6
local last = 5 + 2 * ARGV[5]
while first <= last do
  local stop = math.min(first + 999, last)
  redis.call('HSET', key, unpack(ARGV, first, stop))
  first = stop + 1
end
local count = #ARGV
while first <= count do
  local stop = math.min(first + 999, count)
  redis.call('HDEL', key, unpack(ARGV, first, stop))
  first = stop + 1
end
redis.call('PEXPIRE', key, ttl)
if update then
  return 'saved'
end
return 'created'
