-- Ends the named families of a principal that are live (as
-- list_sessions.lua judges it): each is revoked as revoke_family.lua does
-- (rotation rule 2 refuses its tokens from now on), its grace answer goes
-- at once, and it leaves the session index. Families already over are
-- not counted, so the reply says what this call ended.
--
-- KEYS: 1 principal's session index, 2 principal revocation marker,
--       then per id in ARGV[2..]: its family record, its grace answer
-- ARGV: 1 now ms, 2.. the family ids
-- Reply: the ids of the families ended

local now = tonumber(ARGV[1])
local rev = redis.call('HMGET', KEYS[2], 'before', 'until')
local before, rev_until = tonumber(rev[1] or ''), tonumber(rev[2] or '')
local marked = before and rev_until and rev_until > now

local ended = {}
for i = 2, #ARGV do
  local id, record, answer = ARGV[i], KEYS[2 * i - 1], KEYS[2 * i]
  local f = redis.call('HMGET', record, 'gen', 'iat', 'exp', 'end', 'rev')
  local iat, exp, fam_end = tonumber(f[2] or ''), tonumber(f[3] or ''), tonumber(f[4] or '')
  if f[1] and iat and exp and fam_end and f[5] == '0'
      and exp > now and fam_end > now
      and not (marked and iat <= before) then
    redis.call('HSET', record, 'rev', '1')
    redis.call('DEL', answer)
    table.insert(ended, id)
  end
  redis.call('ZREM', KEYS[1], id)
end
return ended
