-- retry.lua: move members of one worker's processing list to the role's
-- delayed set, each with its run-at time. A member no longer in the
-- processing list (the reaper returned it, or Redis lost it) is skipped:
-- whoever removed it owns its redelivery, so adding it would duplicate it.
--
-- KEYS[1]  P:{R}:active:<worker>  the worker's processing list
-- KEYS[2]  P:{R}:delayed          zset "<prio>:<uuid>" -> run-at (unix ms)
-- ARGV     pairs: member "<prio>:<uuid>", run-at (unix ms)
--
-- Returns how many members moved.
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) > 0 then
    redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
    n = n + 1
  end
end
return n
