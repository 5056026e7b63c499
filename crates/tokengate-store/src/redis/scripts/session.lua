-- One family as the list of sessions shows it, if it is live (rotation
-- rules 1-4 would not refuse it): introspection asks whether a token's
-- family still holds.
--
-- KEYS: 1 family record, 2 principal revocation marker
-- ARGV: 1 now ms
-- Reply: {iat, ref, gen, exp, end, pro, ip}, or an empty array

local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1],
  'gen', 'iat', 'ref', 'exp', 'end', 'pro', 'ip', 'rev')
local iat, exp, fam_end = tonumber(f[2] or ''), tonumber(f[4] or ''), tonumber(f[5] or '')
if not (f[1] and iat and exp and fam_end and f[8] == '0'
    and exp > now and fam_end > now) then
  return {}
end
local rev = redis.call('HMGET', KEYS[2], 'before', 'until')
local before, rev_until = tonumber(rev[1] or ''), tonumber(rev[2] or '')
if before and rev_until and rev_until > now and iat <= before then
  return {}
end
return {f[2], f[3] or f[2], f[1], f[4], f[5], f[6] or '', f[7] or ''}
