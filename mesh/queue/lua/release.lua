-- release.lua: drop a departing worker's lease on one role, but only when its
-- processing list is empty; a lease over unfinished claims stays, so the
-- reaper returns them once it expires.
--
-- KEYS[1]  P:{R}:active:<worker>  the worker's processing list
-- KEYS[2]  P:{R}:leases           worker -> lease deadline
-- ARGV[1]  worker id
--
-- Returns 1 when the lease was dropped, 0 when it was kept.
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0
