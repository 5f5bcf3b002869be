-- prune.lua: forget workers not seen since a cutoff (their heartbeat info
-- and their last-seen entry), at most 1000 per call.
--
-- KEYS[1]  P:{meta}:seen     worker id -> last heartbeat (unix ms)
-- KEYS[2]  P:{meta}:workers  worker id -> heartbeat JSON
-- ARGV[1]  cutoff (unix ms): workers seen strictly before it are forgotten
--
-- Returns how many workers were forgotten.
local old = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[1], 'BYSCORE', 'LIMIT', 0, 1000)
if #old > 0 then
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[2], unpack(old))
end
return #old
