-- promote.lua: move delayed members whose run-at has come to the tail of
-- their priority's pending list, and arm the signal if any moved.
--
-- KEYS[1]     P:{R}:delayed          zset "<prio>:<uuid>" -> run-at (unix ms)
-- KEYS[2]     P:{R}:signal           wake-up token list
-- KEYS[3..6]  P:{R}:pending:0 .. 3   pending lists, by priority
-- ARGV[1]     now (unix ms): members scored <= now are due
-- ARGV[2]     max members to move
--
-- Returns how many members moved. Members that do not start with "<0-3>:"
-- were not written by this package and are dropped.
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local n = 0
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local p = string.byte(m, 1)
  if p and p >= 48 and p <= 51 and string.sub(m, 2, 2) == ':' then
    redis.call('RPUSH', KEYS[3 + p - 48], m)
    n = n + 1
  end
end
if n > 0 and redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('RPUSH', KEYS[2], '1')
end
return n
