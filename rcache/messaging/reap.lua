-- Re-queue the jobs claimed longer ago than the visibility timeout (server clock).
-- KEYS[1] pending list, KEYS[2] claims hash, KEYS[3] dead-letter list,
-- KEYS[4..] processing lists; ARGV[1] visibility timeout (ms).
-- A job found without a claim (its consumer died between taking it and claiming it) gets
-- a claim now, so it comes back one timeout later. Items that are not jobs go to the dead
-- letters. Returns the number of jobs re-queued.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local visibility = tonumber(ARGV[1])
local moved = 0
local seen = {}
for i = 4, #KEYS do
  local items = redis.call('LRANGE', KEYS[i], 0, -1)
  for _, item in ipairs(items) do
    local sep = string.find(item, ':', 34, true)
    local attempt = sep and tonumber(string.sub(item, 34, sep - 1))
    if string.sub(item, 33, 33) ~= ':' or not attempt then
      redis.call('LREM', KEYS[i], 1, item)
      redis.call('LPUSH', KEYS[3], item)
    else
      local id = string.sub(item, 1, 32)
      seen[id] = true
      local claimed = tonumber(redis.call('HGET', KEYS[2], id))
      if not claimed then
        redis.call('HSET', KEYS[2], id, now)
      elseif now - claimed >= visibility then
        redis.call('LREM', KEYS[i], 1, item)
        redis.call('HDEL', KEYS[2], id)
        redis.call('RPUSH', KEYS[1], string.sub(item, 1, 33) .. (attempt + 1) .. string.sub(item, sep))
        moved = moved + 1
      end
    end
  end
end
-- Claims of jobs held by no consumer any more (acked in between, say), once they are old.
local claims = redis.call('HGETALL', KEYS[2])
for i = 1, #claims, 2 do
  if not seen[claims[i]] and now - tonumber(claims[i + 1]) >= visibility then
    redis.call('HDEL', KEYS[2], claims[i])
  end
end
return moved
