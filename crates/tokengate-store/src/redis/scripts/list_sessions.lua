-- Lists a principal's live sessions among the families named: those whose
-- record is live (rotation rules 1-4 would not refuse them: a record
-- exists, not revoked, not lapsed, not ended by the principal's revocation
-- marker). The caller read the names from the session index just before;
-- entries of families that are over leave the index on the way, so it
-- keeps live families only.
--
-- KEYS: 1 principal's session index, 2 principal revocation marker,
--       3.. the family records, one per id in ARGV[3..]
-- ARGV: 1 now ms, 2 most sessions to answer, 3.. the family ids
-- Reply: a flat array, per session oldest login first:
--        id, iat, ref, gen, exp, end, pro, ip

local now = tonumber(ARGV[1])
local rev = redis.call('HMGET', KEYS[2], 'before', 'until')
local before, rev_until = tonumber(rev[1] or ''), tonumber(rev[2] or '')
local marked = before and rev_until and rev_until > now

local live = {}
for i = 3, #KEYS do
  local id = ARGV[i]
  local f = redis.call('HMGET', KEYS[i],
    'gen', 'iat', 'ref', 'exp', 'end', 'pro', 'ip', 'rev')
  local iat, exp, fam_end = tonumber(f[2] or ''), tonumber(f[4] or ''), tonumber(f[5] or '')
  if f[1] and iat and exp and fam_end and f[8] == '0'
      and exp > now and fam_end > now
      and not (marked and iat <= before) then
    table.insert(live, {id, f[2], f[3] or f[2], f[1], f[4], f[5], f[6] or '', f[7] or '', iat})
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
table.sort(live, function(a, b)
  if a[9] ~= b[9] then return a[9] < b[9] end
  return a[1] < b[1]
end)
local reply = {}
for i, s in ipairs(live) do
  if i > tonumber(ARGV[2]) then break end
  for j = 1, 8 do table.insert(reply, s[j]) end
end
return reply
