-- One refresh: compare the presented token's generation and key with the
-- family's one record and, if it is the live token, advance the record to
-- its successor, atomically, so that among any number of concurrent
-- refreshes with the same token exactly one wins. No record is kept per
-- spent token: the family's record alone tells a live token, a spent one
-- and one it has never seen.
--
-- The rotation rules are applied in order; the first that matches decides.
-- They carry the same numbers as the table on `Rotation`
-- (crates/tokengate-store/src/model.rs), which the memory store follows
-- line by line. "now" is always the caller's ARGV[7], never Redis' clock.
--
-- KEYS: 1 family record, 2 family's grace answer,
--       3 principal revocation marker, 4 principal's session index,
--       5 (adoption only) the family's adoption marker
-- ARGV: 1 presented generation, 2 presented key id, 3 presented token's
--       expiry ms, 4 successor key id, 5 successor's expiry ms,
--       6 password fingerprint (hex), 7 now ms, 8 grace until ms,
--       9 answer (bytes, empty without grace or confirmation),
--       10 "1" when the rotation's replication is to be confirmed
--       (store.replica_acks >= 1), else "";
--       adoption only (RefreshStore::adopt, rotation rule 0): 11 "1",
--       12 the adopted family's issued_at_ms, 13 its absolute end ms,
--       14 its password fingerprint (hex), 15 login protocol,
--       16 client address
-- Reply: {code, answer}, the answer empty unless the code is DUPLICATE or
-- UNCONFIRMED.

local ROTATED, DUPLICATE, REUSE_DETECTED, PASSWORD_CHANGED, INVALID, DIVERGED,
  UNCONFIRMED = 1, 2, 3, 4, 5, 6, 7

local now = tonumber(ARGV[7])
local function num(v)
  if v then return tonumber(v) end
  return nil
end
-- Of two decimal timestamps, the earlier, as it was given: never
-- re-formatted by Lua, which would print large numbers in exponent form.
local function earlier(a, b)
  if tonumber(b) < tonumber(a) then return b end
  return a
end

-- Rotation rule 0, adopted: "the presented token (one SpaceONE minted
-- before the move) was never adopted (no adoption marker, no record under
-- its family id)": the record is created at generation 0 holding the
-- presented key, as start_family.lua does, and the marker holds until the
-- presented token expires, so a replay after the record is gone meets rule
-- 1, never a second family. The rules then go on from rule 1.
if ARGV[11] == '1' and redis.call('EXISTS', KEYS[5]) == 0
    and redis.call('EXISTS', KEYS[1]) == 0 then
  local record_end = earlier(ARGV[3], ARGV[13])
  redis.call('HSET', KEYS[1], 'gen', '0', 'key', ARGV[2], 'exp', ARGV[3],
    'iat', ARGV[12], 'end', ARGV[13], 'fp', ARGV[14], 'rev', '0',
    'pro', ARGV[15], 'ip', ARGV[16])
  redis.call('PEXPIREAT', KEYS[1], record_end)
  redis.call('SET', KEYS[5], '1', 'PXAT', ARGV[3])
  local adopted_id = string.match(KEYS[1], ':([^:]*)$')
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[7])
  redis.call('ZADD', KEYS[4], record_end, adopted_id)
  local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[4], string.format('%d', tonumber(last[2])))
end

local fam = redis.call('HMGET', KEYS[1],
  'gen', 'key', 'prev', 'exp', 'iat', 'end', 'fp', 'rev', 'gu', 'pu')
local gen, newest, issued, fam_end =
  num(fam[1]), num(fam[4]), num(fam[5]), num(fam[6])

-- Rotation rule 1, unknown family: "no record has this family id for this
-- domain and principal" (the key's hash tag names them; a record without
-- its fields is no family either).
if not gen or not fam[2] or not newest or not issued or not fam_end then
  return {INVALID, ''}
end

-- Rotation rule 2, revoked: "the family was revoked (reuse, divergence,
-- password change, revoke_family)".
if fam[8] ~= '0' then
  return {INVALID, ''}
end

-- Rotation rule 3, lapsed: "now >= the family's expires_at_ms, or >= the
-- expiry of its newest token".
if fam_end <= now or newest <= now then
  return {INVALID, ''}
end

-- Rotation rule 4, principal revoked: "revoke_principal ran at or after the
-- family's issue, and its marker still holds".
local rev = redis.call('HMGET', KEYS[3], 'before', 'until')
local before, rev_until = num(rev[1]), num(rev[2])
if before and rev_until and rev_until > now and issued <= before then
  return {INVALID, ''}
end

-- Rotation rule 5, expired token: "now >= the presented token's expiry".
if tonumber(ARGV[3]) <= now then
  return {INVALID, ''}
end

-- Ends the family: the record stays (revoked) until it expires; the grace
-- answer goes at once.
local function revoke(code)
  redis.call('HSET', KEYS[1], 'rev', '1')
  redis.call('DEL', KEYS[2])
  return {code, ''}
end

-- Rotation rule 6, diverged: "g > G, or g = G with a key other than the
-- current one, or g = G - 1 with a key other than the one it replaced": a
-- token the record has never seen, so a write was lost. Revokes.
local g = tonumber(ARGV[1])
if g > gen or (g == gen and ARGV[2] ~= fam[2])
    or (g == gen - 1 and ARGV[2] ~= fam[3]) then
  return revoke(DIVERGED)
end

-- Rotation rule 7, password changed: "the password fingerprint differs from
-- the one recorded at issue, whatever the generation", so a duplicate inside
-- the grace window gets no answer minted before the change. Revokes.
if fam[7] ~= ARGV[6] then
  return revoke(PASSWORD_CHANGED)
end

if g < gen then
  if g == gen - 1 then
    -- Rotation rule 8, re-sent: "this very request made generation G (its
    -- successor is the current key)". The cluster client re-sends a command
    -- when its connection drops before the reply; the call won, so it still
    -- wins. Successor ids are fresh random values, so no other request
    -- carries this one.
    if ARGV[4] == fam[2] then
      return {ROTATED, ''}
    end

    -- Rotation rule 9, unconfirmed: "g = G - 1, and the rotation that made
    -- generation G is not yet confirmed as replicated". Its client got
    -- UNAVAILABLE and retries with this token: it gets that rotation's
    -- answer (the caller answers it once the write is confirmed). `pu`
    -- lasts until the confirmation clears it or the spent token expires.
    local pending_until = num(fam[10])
    if pending_until and now < pending_until then
      local answer = redis.call('GET', KEYS[2])
      if answer and answer ~= '' then
        return {UNCONFIRMED, answer}
      end
    end

    -- Rotation rule 10, in grace: "g = G - 1, now < the last winner's now +
    -- grace, and the winner left an answer". The answer expires with the
    -- window, so a missing one means the window has passed.
    local grace_until = num(fam[9])
    if grace_until and now < grace_until then
      local answer = redis.call('GET', KEYS[2])
      if answer and answer ~= '' then
        return {DUPLICATE, answer}
      end
    end
  end

  -- Rotation rule 11, reused: "g < G (any other case)". Revokes.
  return revoke(REUSE_DETECTED)
end

-- Rotation rule 12, live: "g = G with the current key". The successor
-- becomes generation G + 1 and the presented key the one it replaced. The
-- record lives until its newest token expires, never past the family's end
-- (and never shorter than before: no token it has handed out outlives it).
local newest_exp = fam[4]
if tonumber(ARGV[5]) > newest then newest_exp = ARGV[5] end
local record_end = earlier(newest_exp, fam[6])
redis.call('HSET', KEYS[1], 'gen', string.format('%d', gen + 1),
  'key', ARGV[4], 'prev', ARGV[2], 'exp', newest_exp, 'ref', ARGV[7])
redis.call('PEXPIREAT', KEYS[1], record_end)

-- The request's answer is kept for its grace window, no longer than the
-- presented token lives, and, when its replication is to be confirmed,
-- until the confirmation (`settle.lua`) or the presented token's expiry;
-- without either, the last winner's answer goes.
local grace_end = nil
if ARGV[9] ~= '' and tonumber(ARGV[8]) > now then
  grace_end = earlier(ARGV[8], ARGV[3])
end
local confirm = ARGV[9] ~= '' and ARGV[10] == '1'
-- Fields and answer of the previous rotation, if it left any (the common
-- case, no grace and no confirmation, then costs no command here).
local had_answer = fam[9] or fam[10]
if confirm then
  redis.call('HSET', KEYS[1], 'pu', ARGV[3])
  redis.call('SET', KEYS[2], ARGV[9], 'PXAT', ARGV[3])
  if grace_end then
    redis.call('HSET', KEYS[1], 'gu', grace_end)
  elseif fam[9] then
    redis.call('HDEL', KEYS[1], 'gu')
  end
elseif grace_end then
  redis.call('HSET', KEYS[1], 'gu', grace_end)
  redis.call('SET', KEYS[2], ARGV[9], 'PXAT', grace_end)
  if fam[10] then redis.call('HDEL', KEYS[1], 'pu') end
elseif had_answer then
  redis.call('HDEL', KEYS[1], 'gu', 'pu')
  redis.call('DEL', KEYS[2])
end

-- The principal's session index (see start_family.lua) follows the
-- record's end.
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[7])
redis.call('ZADD', KEYS[4], record_end, string.match(KEYS[1], ':([^:]*)$'))
local latest = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[4], string.format('%d', tonumber(latest[2])))
return {ROTATED, ''}
