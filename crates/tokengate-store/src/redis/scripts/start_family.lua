-- Records a new family and its first one-time key (at issue).
--
-- A family id is fresh and random, so anything already under these keys is
-- a leftover: it is replaced, not merged. Each record expires with what it
-- guards: the family at its absolute end, the key at its token's expiry
-- (never after the family's end).
--
-- KEYS: 1 family, 2 first key record
-- ARGV: 1 domain, 2 principal, 3 issued_at_ms, 4 expires_at_ms,
--       5 password fingerprint (hex), 6 family id, 7 key expiry ms,
--       8 key record end ms
-- Reply: 1

redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'domain', ARGV[1], 'principal', ARGV[2],
  'issued_at_ms', ARGV[3], 'expires_at_ms', ARGV[4], 'fp', ARGV[5], 'revoked', '0')
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[2], 'fam', ARGV[6], 'state', 'live', 'exp', ARGV[7])
redis.call('PEXPIREAT', KEYS[2], ARGV[8])
return 1
