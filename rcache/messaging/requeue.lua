-- Give a job back: take it off the processing list and queue it again, attempt + 1.
-- KEYS[1] processing list, KEYS[2] pending list, KEYS[3] claims hash;
-- ARGV[1] the job as stored ("<32 hex id>:<attempt>:<body>"), ARGV[2] job id,
-- ARGV[3] "front" (taken next) or "back" (after everything waiting).
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[3], ARGV[2])
local item = ARGV[1]
local sep = string.find(item, ':', 34, true)
item = string.sub(item, 1, 33) .. (tonumber(string.sub(item, 34, sep - 1)) + 1) .. string.sub(item, sep)
if ARGV[3] == 'front' then
  redis.call('RPUSH', KEYS[2], item)
else
  redis.call('LPUSH', KEYS[2], item)
end
return 1
