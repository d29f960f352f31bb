-- Load a session and slide its expiry in one round trip.
--
-- KEYS[1]  the session hash
-- ARGV[1]  idle timeout (ms)      ARGV[2]  absolute lifetime (ms)
--
-- Returns nil when there is no live session, else
-- {field1, value1, field2, value2, ..., ms left until the absolute deadline}.
--
-- Times come from the server's clock (TIME): every app server then agrees on when a
-- session started and ends, whatever their own clocks say. Redis 7 replicates a script's
-- effects, not the script, so reading TIME before writing is allowed.
-- Three calls: the hash itself tells whether the session exists and when it was created
-- (its creation field is normally the first one). The meta field names must match
-- rcache/sessions/_layout.py.
local fields = redis.call('HGETALL', KEYS[1])
local created
for i = 1, #fields, 2 do
  if fields[i] == '\0created' then
    created = fields[i + 1]
    break
  end
end
if not created then
  return false
end
-- Arithmetic converts the strings itself (cheaper than tonumber() and math.floor()).
local t = redis.call('TIME')
local us = t[2] + 0
local left = created + ARGV[2] - t[1] * 1000 - (us - us % 1000) / 1000
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
if left < ARGV[1] + 0 then
  redis.call('PEXPIRE', KEYS[1], left)
else
  redis.call('PEXPIRE', KEYS[1], ARGV[1])  -- as sent: no number to format
end
fields[#fields + 1] = left
return fields
