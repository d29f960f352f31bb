-- Restart a job's visibility timeout, if the consumer still holds it.
-- KEYS[1] processing list, KEYS[2] claims hash; ARGV[1] the job as stored, ARGV[2] job id.
if not redis.call('LPOS', KEYS[1], ARGV[1]) then
  return 0
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], ARGV[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
return 1
