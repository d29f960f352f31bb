-- Claim the single-flight lease of a page and read the purge clock, in one round trip.
--
-- KEYS[1]  the lease key; KEYS[2] the purge clock (see purge.lua).
-- ARGV[1]  a random token; ARGV[2] the lease in ms.
--
-- Returns {taken, epoch, holder}: 1 when the lease was taken, else 0; the purge epoch now
-- (the clock starts from the server's time in microseconds when its key is missing, so a
-- new or evicted clock never runs behind an epoch already stamped on a purge key); and,
-- when the lease was not taken, its current value ("pass" after a response that was not
-- stored, see release.lua).

local taken = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
local holder = false
if not taken then
  holder = redis.call('GET', KEYS[1])
end

local epoch = redis.call('GET', KEYS[2])
if not epoch then
  local now = redis.call('TIME')
  epoch = string.format('%.0f', tonumber(now[1]) * 1000000 + tonumber(now[2]))
  redis.call('SET', KEYS[2], epoch)
end

if taken then
  return {1, epoch, false}
end
return {0, epoch, holder}
