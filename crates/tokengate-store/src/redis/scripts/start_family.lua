-- Records a new family: its one record, at generation 0 with its first
-- one-time key (at issue).
--
-- A family id is fresh and random, so anything already under these keys is
-- a leftover: it is replaced, not merged. The record lives as long as its
-- newest token (here the first), never past the family's absolute end; the
-- principal's index learns that end, so a revocation marker never needs to
-- outlive the principal's last family record.
--
-- KEYS: 1 family record, 2 family's grace answer, 3 principal's index
-- ARGV: 1 first key id, 2 first token's expiry ms, 3 issued_at_ms,
--       4 absolute end ms, 5 password fingerprint (hex),
--       6 record end ms (the smaller of ARGV[2] and ARGV[4])
-- Reply: 1

redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'gen', '0', 'key', ARGV[1], 'exp', ARGV[2],
  'iat', ARGV[3], 'end', ARGV[4], 'fp', ARGV[5], 'rev', '0')
redis.call('PEXPIREAT', KEYS[1], ARGV[6])

-- The index holds the latest end of any of the principal's family records,
-- and expires then.
local last = tonumber(redis.call('GET', KEYS[3]) or '')
if not last or last < tonumber(ARGV[6]) then
  redis.call('SET', KEYS[3], ARGV[6], 'PXAT', ARGV[6])
end
return 1
