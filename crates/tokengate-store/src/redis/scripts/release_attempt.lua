-- Frees a password check's slot and, for a failed check, counts it.
--
-- Login-limit rule 1: "only a failed password check counts." The failure
-- window (the counter's TTL) starts with the window's first failure; a
-- counter found without a TTL gets one, so it can never live forever. The
-- in-flight set disappears with its last member.
--
-- KEYS: 1 failures, 2 checks in flight
-- ARGV: 1 lease id, 2 window ms (0: the check did not fail)
-- Reply: 1

redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '0' then
  if redis.call('INCR', KEYS[1]) == 1 or redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
end
return 1
