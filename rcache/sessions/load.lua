-- Load a session and slide its expiry in one round trip.
--
-- KEYS[1]  the session hash
-- ARGV[1]  idle timeout (ms)      ARGV[2]  absolute lifetime (ms)
--
-- Returns nil when there is no live session, else
-- {ms left until the absolute deadline, field1, value1, field2, value2, ...}.
--
-- Times come from the server's clock (TIME): every app server then agrees on when a
-- session started and ends, whatever their own clocks say. Redis 7 replicates a script's
-- effects, not the script, so reading TIME before writing is allowed.
-- The meta field names must match rcache/sessions/_ops.py.
local created = redis.call('HGET', KEYS[1], '\0created')
if not created then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local left = tonumber(created) + tonumber(ARGV[2]) - now
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.min(left, tonumber(ARGV[1]))))
local fields = redis.call('HGETALL', KEYS[1])
table.insert(fields, 1, left)
return fields
