-- Page cache lookup in one round trip (see rcache/pages/keys.py).
--
-- KEYS[1]  the URL-level key; its value is the Vary spec: lowercased request header names,
--          sorted, joined by "," ("" when the response has no Vary).
-- ARGV     name1, value1, name2, value2, ...: the request's headers, lowercased names and
--          normalized values, as computed by rcache.pages.keys.lookup_args.
--
-- Returns nil when KEYS[1] does not exist, else {spec, entry}: entry is the value of
-- KEYS[1] .. ":v:" .. sha1hex(material), or nil. For each name of the spec, in order, the
-- material holds name .. "=" .. value .. "\n" when the request has that header and
-- name .. "\n" when it has not (rcache.pages.vary.variant_material computes the same).
-- The variant key shares the hash tag of KEYS[1], so it lives in the same Cluster slot.

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
return {spec, redis.call('GET', variant)}
