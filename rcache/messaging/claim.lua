-- Record that a consumer took a job: its claim time (server clock, ms) and the consumer.
-- KEYS[1] claims hash, KEYS[2] consumers set; ARGV[1] job id, ARGV[2] consumer.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], now)
redis.call('SADD', KEYS[2], ARGV[2])
return now
