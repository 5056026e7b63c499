-- Ends every family of a principal issued at or before now
-- (`tokengate revoke --domain D --user U`) by setting, or replacing, its
-- revocation marker; rotate.lua reads it (rotation rule 4, "principal
-- revoked").
--
-- The marker guards the principal's families that have a record now. None
-- of them can refresh again, so none outlives its record's present end,
-- and the principal's session index holds the latest of those ends: the marker
-- lasts until then (at most ARGV[2]). Without an index there is no family
-- to end, and nothing is written.
--
-- KEYS: 1 marker, 2 principal's session index
-- ARGV: 1 revoked-before ms (now), 2 marker end ms at most
-- Reply: 1 marked, 0 no family to end

local latest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if not latest[2] then
  return 0
end
local last = string.format('%d', tonumber(latest[2]))
local marker_end = ARGV[2]
if tonumber(last) < tonumber(ARGV[2]) then marker_end = last end
if tonumber(marker_end) <= tonumber(ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'before', ARGV[1], 'until', marker_end)
redis.call('PEXPIREAT', KEYS[1], marker_end)
return 1
