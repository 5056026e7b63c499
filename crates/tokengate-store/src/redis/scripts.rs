//! The Lua scripts that make every state change one atomic step, the
//! encoding of their arguments, and the reading of their replies.
//!
//! Each script receives every key it touches in `KEYS` (all with one hash
//! tag, so one slot) and runs atomically. Numbers arrive as decimal
//! strings; timestamps handed to `PEXPIREAT`/`PXAT` are passed through as
//! those strings, never re-formatted by Lua.

use ::redis::{Script, Value};

use crate::{LoginAttempt, Rotation, StoreError};

/// The largest timestamp handed to Redis: `PEXPIREAT` takes a signed 64-bit
/// integer, and a `u64` beyond it would make the whole script fail.
const MAX_REDIS_MS: u64 = i64::MAX as u64;

/// A millisecond timestamp as Redis takes it.
pub(super) fn ms(value: u64) -> String {
    value.min(MAX_REDIS_MS).to_string()
}

/// Records a family and its first key, replacing whatever was there (as the
/// memory store's insert does).
const START_FAMILY_LUA: &str = r"
-- KEYS: 1 family, 2 first key record
-- ARGV: 1 domain, 2 principal, 3 issued_at_ms, 4 expires_at_ms, 5 fp (hex),
--       6 family id, 7 key expiry ms, 8 key record end ms
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'domain', ARGV[1], 'principal', ARGV[2],
  'issued_at_ms', ARGV[3], 'expires_at_ms', ARGV[4], 'fp', ARGV[5], 'revoked', '0')
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[2], 'fam', ARGV[6], 'state', 'live', 'exp', ARGV[7])
redis.call('PEXPIREAT', KEYS[2], ARGV[8])
return 1
";

/// One refresh: the decision table of `MemoryStore::rotate`, in one round
/// trip. Reply: `{code, answer}` (answer empty unless Duplicate).
const ROTATE_LUA: &str = r"
-- KEYS: 1 family, 2 presented key record, 3 presented key's grace answer,
--       4 successor key record, 5 principal revocation marker
-- ARGV: 1 domain, 2 principal, 3 family id, 4 fp (hex), 5 now ms,
--       6 grace until ms, 7 answer (bytes), 8 successor expiry ms,
--       9 successor key id
-- Codes: 1 Rotated, 2 Duplicate, 3 ReuseDetected, 4 PasswordChanged, 5 Invalid
local now = tonumber(ARGV[5])
local function num(v)
  if v then return tonumber(v) end
  return nil
end

-- The family: present, of this principal, not revoked, not past its end.
local fam = redis.call('HMGET', KEYS[1],
  'domain', 'principal', 'issued_at_ms', 'expires_at_ms', 'fp', 'revoked')
local issued, fam_end = num(fam[3]), num(fam[4])
if fam[1] ~= ARGV[1] or fam[2] ~= ARGV[2] or fam[6] ~= '0'
    or not issued or not fam_end or fam_end <= now then
  return {5, ''}
end

-- Not issued at or before a principal revocation that is still in force.
local rev = redis.call('HMGET', KEYS[5], 'before', 'until')
local before, rev_until = num(rev[1]), num(rev[2])
if before and rev_until and rev_until > now and issued <= before then
  return {5, ''}
end

-- The presented key: issued in this family and not expired.
local key = redis.call('HMGET', KEYS[2], 'fam', 'state', 'exp', 'grace_until_ms', 'succ')
local key_end = num(key[3])
if key[1] ~= ARGV[3] or not key_end or key_end <= now then
  return {5, ''}
end

-- A password change ends the family whatever the key's state: a duplicate
-- inside the grace window gets no pre-change answer either.
if fam[5] ~= ARGV[4] then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {4, ''}
end

if key[2] == 'spent' then
  -- The very call that spent it, re-sent by a client library retry after
  -- its reply was lost: it won, so it still wins. Successor ids are fresh
  -- random values, so no other call carries this one.
  if key[5] == ARGV[9] then
    return {1, ''}
  end
  local grace_until = num(key[4])
  local answer = redis.call('GET', KEYS[3])
  if answer and answer ~= '' and grace_until and now < grace_until then
    return {2, answer}
  end
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {3, ''}
end
if key[2] ~= 'live' then
  return {5, ''}
end

-- Spend the key. HSET keeps the record's TTL: it stays, for reuse
-- detection, until the presented token itself expires.
redis.call('HSET', KEYS[2], 'state', 'spent', 'grace_until_ms', ARGV[6], 'succ', ARGV[9])
if ARGV[7] ~= '' and tonumber(ARGV[6]) > now then
  local answer_end = ARGV[6]
  if key_end < tonumber(ARGV[6]) then answer_end = key[3] end
  redis.call('SET', KEYS[3], ARGV[7], 'PXAT', answer_end)
else
  redis.call('DEL', KEYS[3])
end

-- Record the successor, kept no longer than it or its family lives.
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[4], 'fam', ARGV[3], 'state', 'live', 'exp', ARGV[8])
local successor_end = ARGV[8]
if fam_end < tonumber(ARGV[8]) then successor_end = fam[4] end
redis.call('PEXPIREAT', KEYS[4], successor_end)
return {1, ''}
";

/// Revokes one family if it belongs to the given principal. HSET on a
/// missing key would create a record without TTL, hence the check first.
const REVOKE_FAMILY_LUA: &str = r"
-- KEYS: 1 family; ARGV: 1 domain, 2 principal
local f = redis.call('HMGET', KEYS[1], 'domain', 'principal')
if f[1] == ARGV[1] and f[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return 1
end
return 0
";

/// Sets (replaces) a principal's revocation marker.
const REVOKE_PRINCIPAL_LUA: &str = r"
-- KEYS: 1 marker; ARGV: 1 revoked-before ms, 2 marker end ms
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'before', ARGV[1], 'until', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
";

/// Takes a slot for a password check. Reply: `{1, 0}` taken, `{2, 0}` every
/// slot left is in flight, `{0, ms left}` locked by failures. The in-flight
/// set lives as long as its longest lease; expired leases are dropped first.
const ACQUIRE_ATTEMPT_LUA: &str = r"
-- KEYS: 1 failures, 2 checks in flight; ARGV: 1 limit, 2 lease id,
-- 3 lease end ms, 4 now ms
local limit = tonumber(ARGV[1])
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
if failures >= limit then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then left = 1000 end
  return {0, left}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
if failures + redis.call('ZCARD', KEYS[2]) >= limit then
  return {2, 0}
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
local longest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], longest[2])
return {1, 0}
";

/// Frees a check's slot and, for a failure, counts it; the failure window
/// (the counter's TTL) starts with its first failure. The in-flight set
/// disappears with its last member.
const RELEASE_ATTEMPT_LUA: &str = r"
-- KEYS: 1 failures, 2 checks in flight; ARGV: 1 lease id, 2 window ms (0: not failed)
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '0' then
  if redis.call('INCR', KEYS[1]) == 1 or redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
end
return 1
";

/// The scripts, hashed once. `Script` sends EVALSHA and falls back to
/// loading the script when a server does not know it (after a restart or on
/// a new cluster node).
pub(super) struct Scripts {
    /// See [`START_FAMILY_LUA`].
    pub(super) start_family: Script,
    /// See [`ROTATE_LUA`].
    pub(super) rotate: Script,
    /// See [`REVOKE_FAMILY_LUA`].
    pub(super) revoke_family: Script,
    /// See [`REVOKE_PRINCIPAL_LUA`].
    pub(super) revoke_principal: Script,
    /// See [`ACQUIRE_ATTEMPT_LUA`].
    pub(super) acquire_attempt: Script,
    /// See [`RELEASE_ATTEMPT_LUA`].
    pub(super) release_attempt: Script,
}

impl Scripts {
    /// Hashes every script (no I/O: servers learn them on first use).
    pub(super) fn new() -> Self {
        Self {
            start_family: Script::new(START_FAMILY_LUA),
            rotate: Script::new(ROTATE_LUA),
            revoke_family: Script::new(REVOKE_FAMILY_LUA),
            revoke_principal: Script::new(REVOKE_PRINCIPAL_LUA),
            acquire_attempt: Script::new(ACQUIRE_ATTEMPT_LUA),
            release_attempt: Script::new(RELEASE_ATTEMPT_LUA),
        }
    }
}

// The rotate script's reply codes, one per `Rotation` variant.
const ROTATED: i64 = 1;
const DUPLICATE: i64 = 2;
const REUSE_DETECTED: i64 = 3;
const PASSWORD_CHANGED: i64 = 4;
const INVALID: i64 = 5;

/// The rotate script's reply `{code, answer}` as a [`Rotation`]; anything
/// else is an error (a script that answers nonsense is not to be trusted).
pub(super) fn parse_rotation(reply: Value) -> Result<Rotation, StoreError> {
    let unexpected =
        || StoreError::Unavailable("redis: unexpected reply from the rotate script".into());
    let Value::Array(items) = reply else {
        return Err(unexpected());
    };
    let mut items = items.into_iter();
    let (Some(Value::Int(code)), answer) = (items.next(), items.next()) else {
        return Err(unexpected());
    };
    Ok(match code {
        ROTATED => Rotation::Rotated,
        DUPLICATE => match answer {
            // The answer is opaque ciphertext: it must come back byte for byte.
            Some(Value::BulkString(bytes)) => Rotation::Duplicate(bytes),
            _ => return Err(unexpected()),
        },
        REUSE_DETECTED => Rotation::ReuseDetected,
        PASSWORD_CHANGED => Rotation::PasswordChanged,
        INVALID => Rotation::Invalid,
        _ => return Err(unexpected()),
    })
}

/// The acquire-attempt script's reply `{answer, ms left}` as a
/// [`LoginAttempt`]: 1 a slot is held, 2 every slot left is in flight,
/// anything else locked for the time left (at least a millisecond).
pub(super) fn parse_attempt((answer, retry_after_ms): (i64, i64)) -> LoginAttempt {
    match answer {
        1 => LoginAttempt::Allowed,
        2 => LoginAttempt::Busy,
        _ => LoginAttempt::Locked {
            retry_after_ms: retry_after_ms.max(1) as u64,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_clamped_for_pexpireat() {
        assert_eq!(ms(5), "5");
        assert_eq!(ms(u64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn rotate_replies_are_parsed_byte_exact() {
        let answer = vec![0u8, 255, 10, 13, 0];
        let reply = Value::Array(vec![
            Value::Int(DUPLICATE),
            Value::BulkString(answer.clone()),
        ]);
        assert_eq!(parse_rotation(reply).unwrap(), Rotation::Duplicate(answer));
        let reply = Value::Array(vec![Value::Int(INVALID), Value::BulkString(vec![])]);
        assert_eq!(parse_rotation(reply).unwrap(), Rotation::Invalid);
        assert!(parse_rotation(Value::Int(1)).is_err());
        assert!(parse_rotation(Value::Array(vec![Value::Int(99)])).is_err());
    }
}
