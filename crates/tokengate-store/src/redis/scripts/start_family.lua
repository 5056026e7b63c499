-- Records a new family: its one record, at generation 0 with its first
-- one-time key (at issue).
--
-- A family id is fresh and random, so anything already under these keys is
-- a leftover: it is replaced, not merged. The record lives as long as its
-- newest token (here the first), never past the family's absolute end.
--
-- KEYS: 1 family record, 2 family's grace answer
-- ARGV: 1 first key id, 2 first token's expiry ms, 3 issued_at_ms,
--       4 absolute end ms, 5 password fingerprint (hex),
--       6 record end ms (the smaller of ARGV[2] and ARGV[4])
-- Reply: 1

redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'gen', '0', 'key', ARGV[1], 'exp', ARGV[2],
  'iat', ARGV[3], 'end', ARGV[4], 'fp', ARGV[5], 'rev', '0')
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
return 1
