-- Records a new family: its one record, at generation 0 with its first
-- one-time key (at issue).
--
-- A family id is fresh and random, so anything already under these keys is
-- a leftover: it is replaced, not merged. The record lives as long as its
-- newest token (here the first), never past the family's absolute end; the
-- principal's session index learns the family and that end, so the list of
-- sessions finds it and a revocation marker never needs to outlive the
-- principal's last family record.
--
-- KEYS: 1 family record, 2 family's grace answer, 3 principal's session index
-- ARGV: 1 first key id, 2 first token's expiry ms, 3 issued_at_ms,
--       4 absolute end ms, 5 password fingerprint (hex),
--       6 record end ms (the smaller of ARGV[2] and ARGV[4]),
--       7 login protocol, 8 client address
-- Reply: 1

redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'gen', '0', 'key', ARGV[1], 'exp', ARGV[2],
  'iat', ARGV[3], 'end', ARGV[4], 'fp', ARGV[5], 'rev', '0',
  'pro', ARGV[7], 'ip', ARGV[8])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])

-- The session index: every family of the principal with a record, scored
-- by the record's end; entries already ended are dropped on every write,
-- and the index expires with its latest entry.
local family_id = string.match(KEYS[1], ':([^:]*)$')
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[6], family_id)
local latest = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[3], string.format('%d', tonumber(latest[2])))
return 1
