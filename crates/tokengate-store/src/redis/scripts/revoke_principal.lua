-- Ends every family of a principal issued at or before now
-- (`tokengate revoke --domain D --user U`) by setting, or replacing, its
-- revocation marker; rotate.lua reads it (rotation rule 4, "principal
-- revoked"). The marker lasts as long as a family could, then goes.
--
-- KEYS: 1 marker
-- ARGV: 1 revoked-before ms, 2 marker end ms
-- Reply: 1

redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'before', ARGV[1], 'until', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
