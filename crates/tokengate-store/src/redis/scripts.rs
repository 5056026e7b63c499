//! The Lua scripts that make every state change one atomic step (their
//! sources are the `.lua` files in `scripts/`), the encoding of their
//! arguments, and the reading of their replies.
//!
//! Each script receives every key it touches in `KEYS` (all with one hash
//! tag, so one slot) and runs atomically. Numbers arrive as decimal
//! strings; timestamps handed to `PEXPIREAT`/`PXAT` are passed through as
//! those strings, never re-formatted by Lua.

use std::sync::Arc;

use ::redis::{Script, Value};

use crate::{LoginAttempt, Rotation, SessionInfo, SessionOrigin, StoreError};

/// The largest timestamp handed to Redis: `PEXPIREAT` takes a signed 64-bit
/// integer, and a `u64` beyond it would make the whole script fail.
const MAX_REDIS_MS: u64 = i64::MAX as u64;

/// A millisecond timestamp as Redis takes it.
pub(super) fn ms(value: u64) -> String {
    value.min(MAX_REDIS_MS).to_string()
}

/// The scripts, hashed once. `Script` sends EVALSHA and falls back to
/// loading the script when a server does not know it (after a restart or on
/// a new cluster node).
pub(super) struct Scripts {
    /// `start_family.lua`: a new family's record, at generation 0.
    pub(super) start_family: Script,
    /// `rotate.lua`: one refresh, by the rotation rules on [`Rotation`].
    pub(super) rotate: Script,
    /// `revoke_family.lua`: ends one family.
    pub(super) revoke_family: Script,
    /// `revoke_principal.lua`: ends a principal's families so far.
    pub(super) revoke_principal: Script,
    /// `acquire_attempt.lua`: a failed-login counter's slot for a check.
    pub(super) acquire_attempt: Script,
    /// `release_attempt.lua`: frees the slot, counting a failure.
    pub(super) release_attempt: Script,
    /// `settle.lua`: a confirmed rotation's answer is no longer kept for
    /// a retry (shared: it runs in a task of its own).
    pub(super) settle: Arc<Script>,
    /// `list_sessions.lua`: a principal's live sessions.
    pub(super) list_sessions: Script,
    /// `session.lua`: one family, if live.
    pub(super) session: Script,
    /// `end_sessions.lua`: ends some of a principal's live sessions.
    pub(super) end_sessions: Script,
}

impl Scripts {
    /// Hashes every script (no I/O: servers learn them on first use).
    /// Each file describes its keys, arguments and reply at its top.
    pub(super) fn new() -> Self {
        Self {
            start_family: Script::new(include_str!("scripts/start_family.lua")),
            rotate: Script::new(include_str!("scripts/rotate.lua")),
            revoke_family: Script::new(include_str!("scripts/revoke_family.lua")),
            revoke_principal: Script::new(include_str!("scripts/revoke_principal.lua")),
            acquire_attempt: Script::new(include_str!("scripts/acquire_attempt.lua")),
            release_attempt: Script::new(include_str!("scripts/release_attempt.lua")),
            settle: Arc::new(Script::new(include_str!("scripts/settle.lua"))),
            list_sessions: Script::new(include_str!("scripts/list_sessions.lua")),
            session: Script::new(include_str!("scripts/session.lua")),
            end_sessions: Script::new(include_str!("scripts/end_sessions.lua")),
        }
    }
}

/// `rotate.lua`'s reply code for [`Rotation::Rotated`].
const ROTATED: i64 = 1;
/// `rotate.lua`'s reply code for [`Rotation::Duplicate`].
const DUPLICATE: i64 = 2;
/// `rotate.lua`'s reply code for [`Rotation::ReuseDetected`].
const REUSE_DETECTED: i64 = 3;
/// `rotate.lua`'s reply code for [`Rotation::PasswordChanged`].
const PASSWORD_CHANGED: i64 = 4;
/// `rotate.lua`'s reply code for [`Rotation::Invalid`].
const INVALID: i64 = 5;
/// `rotate.lua`'s reply code for [`Rotation::Diverged`].
const DIVERGED: i64 = 6;
/// `rotate.lua`'s reply code for [`Rotation::Retried`].
const UNCONFIRMED: i64 = 7;

/// Whether a rotate reply hands out tokens (a rotation that won, or the
/// answer of an unconfirmed one), so that with replica acknowledgements it
/// must wait for replicas before it is answered.
pub(super) fn hands_out_tokens(reply: &Value) -> bool {
    matches!(reply, Value::Array(items)
        if matches!(items.first(), Some(Value::Int(ROTATED | UNCONFIRMED))))
}

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
        UNCONFIRMED => match answer {
            Some(Value::BulkString(bytes)) => Rotation::Retried(bytes),
            _ => return Err(unexpected()),
        },
        REUSE_DETECTED => Rotation::ReuseDetected,
        PASSWORD_CHANGED => Rotation::PasswordChanged,
        INVALID => Rotation::Invalid,
        DIVERGED => Rotation::Diverged,
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

/// One session as `session.lua` answers it (`iat, ref, gen, exp, end,
/// pro, ip`), or as `list_sessions.lua` answers each (the id first).
pub(super) fn parse_session(
    family_id: String,
    fields: &[String],
) -> Result<SessionInfo, StoreError> {
    let unexpected =
        || StoreError::Unavailable("redis: unexpected reply from a session script".into());
    let [iat, refreshed, generation, exp, end, protocol, address] = fields else {
        return Err(unexpected());
    };
    let number = |text: &String| text.parse::<u64>().map_err(|_| unexpected());
    Ok(SessionInfo {
        family_id,
        issued_at_ms: number(iat)?,
        refreshed_at_ms: number(refreshed)?,
        generation: number(generation)?,
        token_expires_at_ms: number(exp)?,
        expires_at_ms: number(end)?,
        origin: SessionOrigin::new(protocol, address),
    })
}

/// `list_sessions.lua`'s flat reply: eight strings per session.
pub(super) fn parse_sessions(reply: Vec<String>) -> Result<Vec<SessionInfo>, StoreError> {
    if !reply.len().is_multiple_of(8) {
        return Err(StoreError::Unavailable(
            "redis: unexpected reply from the list_sessions script".into(),
        ));
    }
    reply
        .chunks(8)
        .map(|chunk| parse_session(chunk[0].clone(), &chunk[1..]))
        .collect()
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
        let reply = Value::Array(vec![Value::Int(DIVERGED), Value::BulkString(vec![])]);
        assert_eq!(parse_rotation(reply).unwrap(), Rotation::Diverged);
        let reply = Value::Array(vec![Value::Int(UNCONFIRMED), Value::BulkString(vec![7])]);
        assert!(hands_out_tokens(&reply));
        assert_eq!(parse_rotation(reply).unwrap(), Rotation::Retried(vec![7]));
        assert!(hands_out_tokens(&Value::Array(vec![Value::Int(ROTATED)])));
        assert!(!hands_out_tokens(&Value::Array(vec![Value::Int(
            DUPLICATE
        )])));
        assert!(parse_rotation(Value::Int(1)).is_err());
        assert!(parse_rotation(Value::Array(vec![Value::Int(99)])).is_err());
    }
}
