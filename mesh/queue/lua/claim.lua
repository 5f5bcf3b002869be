-- claim.lua: move up to ARGV[1] members from a role's pending lists into one
-- worker's processing list, visiting the pending lists in the order given
-- (the Go side draws a weighted order per call). Pops with LPOP count and
-- appends with RPUSH: inside one script this is the same atomic move as a
-- loop of LMOVE LEFT RIGHT, with far fewer calls.
--
-- KEYS[1]      P:{R}:active:<worker>  the worker's processing list
-- KEYS[2]      P:{R}:signal           wake-up token list (at most 1 long)
-- KEYS[3]      P:{R}:leases           worker -> lease deadline (unix ms)
-- KEYS[4..n]   P:{R}:pending:<prio>   pending lists, in visiting order
-- ARGV[1]      max members to move (1..1000)
-- ARGV[2]      worker id
-- ARGV[3]      lease deadline (unix ms) to give the worker if it holds none
--
-- Returns the moved members ("<prio>:<uuid>"), in the order moved.
-- Leaves the signal armed exactly when work remains, so another idle
-- claimer of the role wakes up; deletes a stale token otherwise.
local max = tonumber(ARGV[1])
local out = {}
for i = 4, #KEYS do
  local need = max - #out
  if need <= 0 then break end
  local got = redis.call('LPOP', KEYS[i], need)
  if got then
    redis.call('RPUSH', KEYS[1], unpack(got))
    for _, m in ipairs(got) do out[#out + 1] = m end
  end
end
if #out > 0 then
  redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[2])
end
local more = false
if #out == max then
  for i = 4, #KEYS do
    if redis.call('LLEN', KEYS[i]) > 0 then more = true break end
  end
end
if more then
  if redis.call('LLEN', KEYS[2]) == 0 then redis.call('RPUSH', KEYS[2], '1') end
else
  redis.call('DEL', KEYS[2])
end
return out
