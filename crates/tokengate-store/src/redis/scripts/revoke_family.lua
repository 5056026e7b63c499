-- Ends one family (`tokengate revoke --token`, or a refresh that found its
-- principal gone or disabled): its keys stop refreshing (rotation rule 2,
-- "revoked").
--
-- Only a family of the named principal is touched, and only one that
-- exists: HSET on a missing key would create a record without a TTL.
--
-- KEYS: 1 family
-- ARGV: 1 domain, 2 principal
-- Reply: 1 revoked, 0 no such family of this principal

local f = redis.call('HMGET', KEYS[1], 'domain', 'principal')
if f[1] == ARGV[1] and f[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return 1
end
return 0
