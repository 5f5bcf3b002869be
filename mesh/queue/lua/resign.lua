-- resign.lua: give up the leadership if we hold it.
--
-- KEYS[1]  P:{meta}:leader  id of the leader
-- ARGV[1]  our id
--
-- Returns 1 when we held it and released it, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
