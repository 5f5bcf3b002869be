-- return.lua: give a dead worker's claims back. Every member of its
-- processing list goes back to the head of its priority's pending list (it
-- has waited already), in the original order, except the ids in ARGV[2..]
-- (the store dead-lettered those). Then the processing list and the lease
-- are deleted, so running it twice returns nothing the second time.
--
-- KEYS[1]     P:{R}:active:<worker>  the worker's processing list
-- KEYS[2]     P:{R}:leases           worker -> lease deadline
-- KEYS[3]     P:{R}:signal           wake-up token list
-- KEYS[4..7]  P:{R}:pending:0 .. 3   pending lists, by priority
-- ARGV[1]     worker id
-- ARGV[2..n]  task ids (uuid strings) to drop instead of returning
--
-- Returns how many members went back to pending.
local drop = {}
for i = 2, #ARGV do drop[ARGV[i]] = true end
local ms = redis.call('LRANGE', KEYS[1], 0, -1)
local n = 0
for i = #ms, 1, -1 do
  local m = ms[i]
  local p = string.byte(m, 1)
  if p and p >= 48 and p <= 51 and string.sub(m, 2, 2) == ':' and not drop[string.sub(m, 3)] then
    redis.call('LPUSH', KEYS[4 + p - 48], m)
    n = n + 1
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if n > 0 and redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('RPUSH', KEYS[3], '1')
end
return n
