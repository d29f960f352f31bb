-- Write the changed fields of a session in one round trip; never resurrect a deleted one.
--
-- KEYS[1]  the session hash
-- ARGV[1]  'create' (a new session) or 'update' (one that was loaded)
-- ARGV[2]  idle timeout (ms)      ARGV[3]  absolute lifetime (ms)
-- ARGV[4]  creation token: a random value stored with a new session, so a retried
--          'create' recognises its own earlier write instead of reporting a collision
-- ARGV[5]  n, the number of field/value pairs to set; then the n pairs; then the
--          fields to delete
--
-- Returns 'created', 'saved', 'gone' (the session was deleted or has expired: nothing is
-- written) or 'collision' (a 'create' found another session under this id).
-- Setting fixed values and deleting fields can be applied twice with the same result, so
-- the adapter may retry this call after a lost connection.
-- The meta field names must match rcache/sessions/_ops.py.
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local created
if ARGV[1] == 'create' then
  local token = redis.call('HGET', key, '\0token')
  if token then
    if token ~= ARGV[4] then
      return 'collision'
    end
    created = tonumber(redis.call('HGET', key, '\0created'))
  elseif redis.call('EXISTS', key) == 1 then
    return 'collision'
  else
    created = now
    redis.call('HSET', key, '\0created', string.format('%d', now), '\0token', ARGV[4])
  end
else
  created = tonumber(redis.call('HGET', key, '\0created'))
  if not created then
    return 'gone'
  end
end
local left = created + tonumber(ARGV[3]) - now
if left <= 0 then
  redis.call('DEL', key)
  return 'gone'
end
-- unpack() is bounded by the Lua stack: send long argument lists in chunks.
local first = 6
local last = 5 + 2 * tonumber(ARGV[5])
while first <= last do
  local stop = math.min(first + 999, last)
  redis.call('HSET', key, unpack(ARGV, first, stop))
  first = stop + 1
end
first = last + 1
while first <= #ARGV do
  local stop = math.min(first + 999, #ARGV)
  redis.call('HDEL', key, unpack(ARGV, first, stop))
  first = stop + 1
end
redis.call('PEXPIRE', key, string.format('%d', math.min(left, tonumber(ARGV[2]))))
if ARGV[1] == 'create' then
  return 'created'
end
return 'saved'
