-- Page cache lookup in one round trip (see rcache/pages/keys.py and rcache/pages/_layout.py).
--
-- KEYS[1]  the URL-level key; its value is the Vary spec: lowercased request header names,
--          sorted, joined by "," ("" when the response has no Vary).
-- ARGV     name1, value1, name2, value2, ...: the request's headers, lowercased names and
--          normalized values, as computed by rcache.pages.keys.lookup_args.
--
-- Returns nil when KEYS[1] does not exist, else {spec, entry, t}. For each name of the spec, in
-- order, the material holds name .. "=" .. value .. "\n" when the request has that header
-- and name .. "\n" when it has not (rcache.pages.vary.variant_material computes the same).
-- The variant lives at KEYS[1] .. ":v:" .. sha1hex(material), a hash:
--
--   e  the StoredEntry bytes
--   g  the purge epoch read before the response was produced
--   t  the entry's purge keys (its URL, its path prefixes, its tags), separated by "\n"
--
-- entry is field e, or nil when the variant is absent or purged; t is field t when entry is
-- returned (what a client may remember to check the purge keys itself, see
-- rcache/pages/_memo.py), else nil. An entry is valid only while
-- every purge key exists and holds an epoch <= g (rcache/pages/purge.lua stamps them). A
-- missing purge key (evicted) counts as purged, so eviction causes misses, never stale hits.
-- The variant key shares the hash tag of KEYS[1], so it lives in the same Cluster slot; the
-- purge keys are read without being declared, which the page cache allows only where they
-- share that slot (standalone and Sentinel, or one hash tag for the whole cache on Cluster).

local spec = redis.call('GET', KEYS[1])
if not spec then
  return false
end

local values = {}
for i = 1, #ARGV - 1, 2 do
  values[ARGV[i]] = ARGV[i + 1]
end

local parts = {}
for name in string.gmatch(spec, '[^,]+') do
  local value = values[name]
  if value then
    parts[#parts + 1] = name .. '=' .. value .. '\n'
  else
    parts[#parts + 1] = name .. '\n'
  end
end

local variant = KEYS[1] .. ':v:' .. redis.sha1hex(table.concat(parts))
local fields = redis.call('HMGET', variant, 'e', 'g', 't')
local entry = fields[1]
if entry then
  local epoch = tonumber(fields[2])
  for key in string.gmatch(fields[3] or '', '[^\n]+') do
    local purged = tonumber(redis.call('GET', key) or '')
    if not epoch or not purged or purged > epoch then
      return {spec, false, false}
    end
  end
end
return {spec, entry, entry and fields[3] or false}
