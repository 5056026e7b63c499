-- Takes a slot of one failed-login counter for a password check.
--
-- Login-limit rule 3: "F >= L refuses the attempt with the time left in the
-- window, which starts with the first failure."
-- Login-limit rule 2: "with limit L and F failures in the window, at most
-- L - F password checks may be in flight at once."
-- Expired leases (checks abandoned by a process that died) are dropped
-- first; the in-flight set lives as long as its longest lease.
--
-- KEYS: 1 failures (a counter whose TTL is the window),
--       2 checks in flight (lease ids scored by their end)
-- ARGV: 1 limit, 2 lease id, 3 lease end ms, 4 now ms
-- Reply: {1, 0} slot taken, {2, 0} every slot left is in flight,
--        {0, ms left} locked

local limit = tonumber(ARGV[1])
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
if failures >= limit then
  local left = redis.call('PTTL', KEYS[1])
  -- A counter without a TTL should not exist (release_attempt.lua sets
  -- one); answer a short retry rather than a negative one.
  if left < 0 then left = 1000 end
  return {0, left}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
if failures + redis.call('ZCARD', KEYS[2]) >= limit then
  return {2, 0}
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
local longest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], longest[2])
return {1, 0}
