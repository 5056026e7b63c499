-- Ends one family (`tokengate revoke --token`, or a refresh that found its
-- principal gone or disabled): its tokens stop refreshing (rotation rule 2,
-- "revoked"), and its grace answer goes at once.
--
-- The record's key names the family and, by its hash tag, its principal,
-- so only a family of the named principal is touched, and only one that
-- exists: HSET on a missing key would create a record without a TTL.
--
-- KEYS: 1 family record, 2 family's grace answer
-- ARGV: none
-- Reply: 1 revoked, 0 no such family of this principal

if redis.call('HEXISTS', KEYS[1], 'gen') == 1 then
  redis.call('HSET', KEYS[1], 'rev', '1')
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
