-- Purge in one round trip, whatever the number of pages concerned.
--
-- KEYS[1]  the purge clock; KEYS[2..] purge keys (a URL, a path prefix or a tag).
--
-- The clock advances to max(its epoch + 1, the server's time in microseconds) and every
-- purge key that exists is stamped with the new epoch, keeping its TTL. Entries remember the
-- epoch read before their response was produced (field g, see lookup.lua), so every entry
-- of these keys produced before this purge is dead at once. A purge key that does not exist
-- needs no stamp: no valid entry refers to it, and an entry being produced right now creates
-- it at the new epoch (store.lua). Returns the new epoch.

local now = redis.call('TIME')
local epoch = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if epoch <= last then
  epoch = last + 1
end
epoch = string.format('%.0f', epoch)
redis.call('SET', KEYS[1], epoch)
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], epoch, 'XX', 'KEEPTTL')
end
return epoch
