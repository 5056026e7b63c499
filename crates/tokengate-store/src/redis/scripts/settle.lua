-- Confirms a rotation whose replication was acknowledged: its answer is no
-- longer kept for the client's retry (rotation rule 9), only for the grace
-- window if there is one. Runs after the acknowledgement, off the
-- request's path; harmless if a later rotation already moved the family
-- on (that one then owns the record's fields) or the record is gone.
--
-- KEYS: 1 family record, 2 family's answer
-- ARGV: 1 the generation the confirmed rotation made, 2 now ms
-- Reply: 1 if confirmed now, 0 if there was nothing to confirm.

local fam = redis.call('HMGET', KEYS[1], 'gen', 'pu', 'gu')
if fam[1] ~= ARGV[1] or not fam[2] then
  return 0
end
redis.call('HDEL', KEYS[1], 'pu')
local grace_until = tonumber(fam[3] or '0')
if grace_until > tonumber(ARGV[2]) then
  redis.call('PEXPIREAT', KEYS[2], fam[3])
else
  redis.call('DEL', KEYS[2])
end
return 1
