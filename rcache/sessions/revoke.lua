-- Delete a session if it still belongs to the given user ("log out everywhere").
--
-- KEYS[1]  the session hash      ARGV[1]  the user id
--
-- Returns 1 when the session was deleted, 0 when it is gone or belongs to someone else.
if redis.call('HGET', KEYS[1], '\0user') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
