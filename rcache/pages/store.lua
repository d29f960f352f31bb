-- Store one page variant in one round trip: entry, Vary spec, purge keys, lease release.
--
-- KEYS[1]  the URL-level key (its value: the Vary spec)
-- KEYS[2]  the variant hash (fields e, g, t: see lookup.lua)
-- KEYS[3]  the single-flight lease key
-- KEYS[4]  the purge clock (see purge.lua)
-- KEYS[5..] the entry's purge keys: its URL, its path prefixes, its tags
-- ARGV[1]  the Vary spec; ARGV[2] the StoredEntry bytes; ARGV[3] the purge epoch read before
--          the response was produced; ARGV[4] the entry's TTL in ms; ARGV[5] the lease token
--          ("" when the caller holds no lease)
--
-- A missing purge key is created at the clock's *current* epoch: if a purge ran while the
-- response was produced (the clock moved past ARGV[3]), the entry is born invalid rather
-- than outliving a purge it may predate. Purge keys and the spec are kept at least as long
-- as the entry, so they cannot expire under it (an expired one would only cause a miss).

local ttl = tonumber(ARGV[4])
local current = redis.call('GET', KEYS[4]) or ARGV[3]

local function outlive(key)
  local left = redis.call('PTTL', key)
  if left >= 0 and left < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end

local purge_keys = {}
for i = 5, #KEYS do
  purge_keys[#purge_keys + 1] = KEYS[i]
  if not redis.call('SET', KEYS[i], current, 'NX', 'PX', ttl) then
    outlive(KEYS[i])
  end
end

redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'e', ARGV[2], 'g', ARGV[3], 't', table.concat(purge_keys, '\n'))
redis.call('PEXPIRE', KEYS[2], ttl)

local spec_ttl = redis.call('PTTL', KEYS[1])
if spec_ttl < ttl then
  spec_ttl = ttl
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', spec_ttl)

if ARGV[5] ~= '' and redis.call('GET', KEYS[3]) == ARGV[5] then
  redis.call('DEL', KEYS[3])
end
return 1
