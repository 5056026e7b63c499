-- One refresh: spend the presented one-time key and record its successor,
-- atomically, so that among any number of concurrent refreshes with the
-- same token exactly one wins.
--
-- The rotation rules are applied in order; the first that matches decides.
-- They carry the same numbers as the table on `Rotation`
-- (crates/tokengate-store/src/model.rs), which the memory store follows
-- line by line. "now" is always the caller's ARGV[5], never Redis' clock.
--
-- KEYS: 1 family, 2 presented key record, 3 presented key's grace answer,
--       4 successor key record, 5 principal revocation marker
-- ARGV: 1 domain, 2 principal, 3 family id, 4 password fingerprint (hex),
--       5 now ms, 6 grace until ms, 7 answer (bytes), 8 successor expiry ms,
--       9 successor key id
-- Reply: {code, answer}, the answer empty unless the code is DUPLICATE.

local ROTATED, DUPLICATE, REUSE_DETECTED, PASSWORD_CHANGED, INVALID = 1, 2, 3, 4, 5

local now = tonumber(ARGV[5])
local function num(v)
  if v then return tonumber(v) end
  return nil
end

local fam = redis.call('HMGET', KEYS[1],
  'domain', 'principal', 'issued_at_ms', 'expires_at_ms', 'fp', 'revoked')
local issued, fam_end = num(fam[3]), num(fam[4])

-- Rotation rule 1, unknown family: "no family has this id, or it belongs to
-- another domain or principal" (a record without its times is no family
-- either).
if fam[1] ~= ARGV[1] or fam[2] ~= ARGV[2] or not issued or not fam_end then
  return {INVALID, ''}
end

-- Rotation rule 2, revoked: "the family was revoked (reuse, password change,
-- revoke_family)".
if fam[6] ~= '0' then
  return {INVALID, ''}
end

-- Rotation rule 3, past the family's end: "now >= the family's
-- expires_at_ms".
if fam_end <= now then
  return {INVALID, ''}
end

-- Rotation rule 4, principal revoked: "revoke_principal ran at or after the
-- family's issue, and its marker still holds".
local rev = redis.call('HMGET', KEYS[5], 'before', 'until')
local before, rev_until = num(rev[1]), num(rev[2])
if before and rev_until and rev_until > now and issued <= before then
  return {INVALID, ''}
end

-- Rotation rule 5, unknown key: "the presented key was never recorded,
-- belongs to another family, or its token has expired".
local key = redis.call('HMGET', KEYS[2], 'fam', 'state', 'exp', 'grace_until_ms', 'succ')
local key_end = num(key[3])
if key[1] ~= ARGV[3] or not key_end or key_end <= now then
  return {INVALID, ''}
end

-- Rotation rule 6, password changed: "the password fingerprint differs from
-- the one recorded at issue, whatever the key's state", so a duplicate inside
-- the grace window gets no answer minted before the change. Revokes.
if fam[5] ~= ARGV[4] then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {PASSWORD_CHANGED, ''}
end

if key[2] == 'spent' then
  -- Rotation rule 7, re-sent: "the key was spent by this very request (same
  -- successor id), re-sent after its reply was lost". The cluster client
  -- re-sends a command when its connection drops before the reply; the call
  -- won, so it still wins. Successor ids are fresh random values, so no other
  -- request carries this one.
  if key[5] == ARGV[9] then
    return {ROTATED, ''}
  end

  -- Rotation rule 8, in grace: "the key is spent, now < the winner's now +
  -- grace, and the winner left an answer". The answer key expires with the
  -- window, so a missing one means the window has passed.
  local grace_until = num(key[4])
  local answer = redis.call('GET', KEYS[3])
  if answer and answer ~= '' and grace_until and now < grace_until then
    return {DUPLICATE, answer}
  end

  -- Rotation rule 9, reused: "the key is spent (any other case)". Revokes.
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {REUSE_DETECTED, ''}
end

-- A record in neither state was not written by these scripts: it counts
-- as an unknown key (rotation rule 5).
if key[2] ~= 'live' then
  return {INVALID, ''}
end

-- Rotation rule 10, live: "the key is live: it becomes spent (keeping the
-- request's answer for its grace window) and the successor is recorded as
-- live". HSET keeps the record's TTL: it stays, for reuse detection (rotation
-- rule 9), until the presented token itself expires.
redis.call('HSET', KEYS[2], 'state', 'spent', 'grace_until_ms', ARGV[6], 'succ', ARGV[9])
if ARGV[7] ~= '' and tonumber(ARGV[6]) > now then
  -- The answer lives until the window ends, or the token does if sooner.
  local answer_end = ARGV[6]
  if key_end < tonumber(ARGV[6]) then answer_end = key[3] end
  redis.call('SET', KEYS[3], ARGV[7], 'PXAT', answer_end)
else
  redis.call('DEL', KEYS[3])
end

-- The successor is kept no longer than it or its family lives.
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[4], 'fam', ARGV[3], 'state', 'live', 'exp', ARGV[8])
local successor_end = ARGV[8]
if fam_end < tonumber(ARGV[8]) then successor_end = fam[4] end
redis.call('PEXPIREAT', KEYS[4], successor_end)
return {ROTATED, ''}
