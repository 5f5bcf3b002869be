-- leader.lua: take the leadership when nobody holds it, or renew it when we
-- already hold it.
--
-- KEYS[1]  P:{meta}:leader  id of the leader (expires)
-- ARGV[1]  candidate id
-- ARGV[2]  lease (ms)
--
-- Returns 1 when ARGV[1] is the leader after the call, 0 otherwise.
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
