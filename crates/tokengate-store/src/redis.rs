//! The Redis store: refresh state shared by every tokengate instance, on a
//! standalone Redis or a Redis Cluster.
//!
//! # Key layout
//!
//! Every key starts with the configured prefix, and every key of one
//! principal carries the same hash tag `{tag}` — the first 16 hex digits of
//! SHA-256(`domain_id` `\0` `principal_id`) — so each operation below touches
//! one cluster slot and runs as one atomic Lua script, standalone or cluster.
//!
//! | key | type | fields | expires |
//! | --- | --- | --- | --- |
//! | `<prefix>fam:{tag}:<family_id>` | hash | `domain`, `principal`, `issued_at_ms`, `expires_at_ms`, `fp` (hex), `revoked` (`0`/`1`) | at `expires_at_ms` |
//! | `<prefix>key:{tag}:<key_id>` | hash | `fam`, `state` (`live`/`spent`), `exp`, `grace_until_ms`, `succ` | at the token's expiry (never after the family's) |
//! | `<prefix>ans:{tag}:<key_id>` | string | the winner's encrypted answer | at the end of the grace window |
//! | `<prefix>rev:{tag}` | hash | `before`, `until` | at `until` |
//!
//! The grace answer lives in its own key rather than in the key record so
//! it disappears with the window (SPEC §3) while the spent record stays for
//! reuse detection until the token itself expires.
//!
//! Decisions compare against the `now_ms` the caller passes, never Redis'
//! clock, so this store decides exactly as [`crate::MemoryStore`] does; the
//! TTLs only bound how long Redis keeps a record.
//!
//! One addition over the memory store: a rotation re-sent with the same
//! successor id as the call that spent the key answers `Rotated` again
//! instead of `ReuseDetected`. The cluster client re-sends a command when a
//! connection drops before the reply arrives; without this, a rotation that
//! succeeded but whose reply was lost would revoke its own family. Callers
//! draw a fresh random successor for every refresh, so no other call can
//! carry that id.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{
    Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, Pipeline, RedisError,
    RedisFuture, RedisResult, Script, Value,
};
use aws_lc_rs::digest::{SHA256, digest};

use crate::{
    AttemptCounter, CheckLease, CheckOutcome, FamilyRecord, FamilyRef, KeyId, LoginAttempt,
    RefreshStore, RotateRequest, Rotation, StoreError,
};

/// Consecutive timeouts or connection-level failures after which the
/// current connection is thrown away and the next call dials afresh. The
/// client libraries reconnect by themselves when a socket closes, but not
/// when it silently stops answering (a half-open TCP connection after a
/// failover or a NAT drop): without this the store would time out until the
/// kernel gives up on the socket, which takes minutes.
const MAX_STRIKES: u32 = 3;

/// The largest timestamp handed to Redis: `PEXPIREAT` takes a signed 64-bit
/// integer, and a `u64` beyond it would make the whole script fail.
const MAX_REDIS_MS: u64 = i64::MAX as u64;

/// Where a [`RedisStore`] connects.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisEndpoint {
    /// One URL: `redis://` or `rediss://` for a standalone server,
    /// `redis+cluster://[user:password@]host:port,host:port[/db]` or
    /// `rediss+cluster://…` for a Redis Cluster (the hosts are its seeds).
    Url(String),
    /// Redis Cluster seed nodes, each a `redis://` or `rediss://` URL
    /// (all with the same credentials and TLS mode).
    ClusterNodes(Vec<String>),
}

/// How to reach Redis and how to name keys there.
#[derive(Clone)]
pub struct RedisStoreConfig {
    /// The server or cluster.
    pub endpoint: RedisEndpoint,
    /// Prepended to every key; must not contain `{` or `}` (they would
    /// change which part of a key Redis Cluster hashes).
    pub key_prefix: String,
    /// Bound on every Redis call, connecting included.
    pub timeout: Duration,
}

impl RedisStoreConfig {
    /// The key prefix when none is configured.
    pub const DEFAULT_KEY_PREFIX: &'static str = "tokengate:";
    /// The call timeout when none is configured (`store.timeout_ms`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

    /// A config for one URL (standalone, or cluster with a `+cluster`
    /// scheme), with the default prefix and timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            endpoint: RedisEndpoint::Url(url.into()),
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// A config for a Redis Cluster given by its seed node URLs, with the
    /// default prefix and timeout.
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            endpoint: RedisEndpoint::ClusterNodes(nodes.into_iter().map(Into::into).collect()),
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The same config with another key prefix.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The same config with another call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Debug output never shows URLs: they may carry a password.
impl fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(_) => f.write_str("Url(<redacted>)"),
            Self::ClusterNodes(nodes) => write!(f, "ClusterNodes(<{} redacted>)", nodes.len()),
        }
    }
}

/// Debug output never shows URLs: they may carry a password.
impl fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("endpoint", &self.endpoint)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A [`RedisStoreConfig`] that cannot work. Redis being unreachable is not
/// one of these: the store starts anyway and connects when it can.
#[derive(Debug, thiserror::Error)]
pub enum RedisConfigError {
    /// The URL or a node URL is malformed or of an unknown kind. The text
    /// never repeats the URL (it may carry a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// The key prefix contains `{` or `}`.
    #[error("invalid Redis key prefix: it must not contain '{{' or '}}'")]
    InvalidPrefix,
    /// A zero timeout would fail every call.
    #[error("the Redis call timeout must be greater than zero")]
    ZeroTimeout,
}

/// Refresh state in Redis (standalone or cluster). See the module docs for
/// the key layout; every state change is one Lua script on one slot.
pub struct RedisStore {
    link: Link,
    prefix: String,
    timeout: Duration,
    description: String,
    redactor: Redactor,
    scripts: Scripts,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("description", &self.description)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Builds the store and tries to connect once (bounded by the timeout).
    ///
    /// Fails only on a config that can never work. An unreachable Redis is
    /// logged and tolerated: calls fail with [`StoreError::Unavailable`] or
    /// [`StoreError::Timeout`] until Redis answers, and the store connects
    /// by itself then.
    pub async fn connect(config: RedisStoreConfig) -> Result<Self, RedisConfigError> {
        if config.key_prefix.contains(['{', '}']) {
            return Err(RedisConfigError::InvalidPrefix);
        }
        if config.timeout.is_zero() {
            return Err(RedisConfigError::ZeroTimeout);
        }
        let resolved = resolve(&config.endpoint, config.timeout)?;
        let description = format!("{} (prefix {})", resolved.description, config.key_prefix);
        let store = Self {
            link: Link::new(resolved.target, config.timeout),
            prefix: config.key_prefix,
            timeout: config.timeout,
            description,
            redactor: resolved.redactor,
            scripts: Scripts::new(),
        };
        match store.ping().await {
            Ok(()) => tracing::info!(store = %store.description, "connected to Redis"),
            Err(error) => tracing::warn!(
                store = %store.description,
                %error,
                "Redis is not reachable yet; refresh calls fail until it is"
            ),
        }
        Ok(store)
    }

    /// Runs `op` on a connection, all of it (connecting included) bounded
    /// by the timeout, and maps the outcome to a [`StoreError`].
    async fn exec<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut + Send,
        Fut: Future<Output = RedisResult<T>> + Send,
        T: Send,
    {
        // Which connection the attempt used, so a timeout is charged to it
        // and not to a newer one that another task dialled meanwhile.
        let used = AtomicU64::new(NO_GENERATION);
        let attempt = async {
            let (generation, conn) = self.link.get().await.map_err(|e| self.map_error(e))?;
            used.store(generation, Ordering::Relaxed);
            match op(conn).await {
                Ok(value) => {
                    self.link.healthy(generation);
                    Ok(value)
                }
                Err(error) => {
                    if is_connection_fault(&error) {
                        self.link.strike(generation);
                    }
                    Err(self.map_error(error))
                }
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_elapsed) => {
                let generation = used.load(Ordering::Relaxed);
                if generation != NO_GENERATION {
                    self.link.strike(generation);
                }
                Err(StoreError::Timeout)
            }
        }
    }

    fn map_error(&self, error: RedisError) -> StoreError {
        if error.is_timeout() {
            StoreError::Timeout
        } else {
            StoreError::Unavailable(self.redactor.clean(format!("redis: {error}")))
        }
    }

    fn key(&self, kind: &str, tag: &str, id: &str) -> String {
        format!("{}{kind}:{{{tag}}}:{id}", self.prefix)
    }

    fn family_key(&self, tag: &str, family_id: &str) -> String {
        self.key("fam", tag, family_id)
    }

    fn key_record(&self, tag: &str, key: &KeyId) -> String {
        self.key("key", tag, &key.0)
    }

    fn answer_key(&self, tag: &str, key: &KeyId) -> String {
        self.key("ans", tag, &key.0)
    }

    /// A login counter's failures: its own slot (the id is already a digest).
    fn attempt_key(&self, counter: &AttemptCounter) -> String {
        format!("{}login:{{{}}}", self.prefix, counter.id)
    }

    /// The same counter's checks in flight (a sorted set of lease ids by
    /// expiry), on the same slot so one script sees both.
    fn in_flight_key(&self, counter: &AttemptCounter) -> String {
        format!("{}login-checks:{{{}}}", self.prefix, counter.id)
    }

    fn revocation_key(&self, tag: &str) -> String {
        format!("{}rev:{{{tag}}}", self.prefix)
    }
}

#[async_trait::async_trait]
impl RefreshStore for RedisStore {
    async fn start_family(
        &self,
        family: &FamilyRecord,
        first_key: &KeyId,
        key_expires_at_ms: u64,
    ) -> Result<(), StoreError> {
        let f = &family.family;
        let tag = principal_tag(&f.domain_id, &f.principal_id);
        let mut call = self.scripts.start_family.prepare_invoke();
        call.key(self.family_key(&tag, &f.family_id))
            .key(self.key_record(&tag, first_key))
            .arg(&f.domain_id)
            .arg(&f.principal_id)
            .arg(ms(family.issued_at_ms))
            .arg(ms(family.expires_at_ms))
            .arg(hex::encode(family.password_fingerprint))
            .arg(&f.family_id)
            .arg(ms(key_expires_at_ms))
            // A key cannot refresh past its family's end, so Redis need not
            // keep it longer.
            .arg(ms(key_expires_at_ms.min(family.expires_at_ms)));
        self.exec(|mut conn| async move { call.invoke_async::<()>(&mut conn).await })
            .await
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<Rotation, StoreError> {
        let f = &req.family;
        let tag = principal_tag(&f.domain_id, &f.principal_id);
        let mut call = self.scripts.rotate.prepare_invoke();
        call.key(self.family_key(&tag, &f.family_id))
            .key(self.key_record(&tag, &req.presented))
            .key(self.answer_key(&tag, &req.presented))
            .key(self.key_record(&tag, &req.successor))
            .key(self.revocation_key(&tag))
            .arg(&f.domain_id)
            .arg(&f.principal_id)
            .arg(&f.family_id)
            .arg(hex::encode(req.password_fingerprint))
            .arg(ms(req.now_ms))
            .arg(ms(req.now_ms.saturating_add(req.grace_ms)))
            .arg(req.answer.as_slice())
            .arg(ms(req.successor_expires_at_ms))
            .arg(&req.successor.0);
        let reply = self
            .exec(|mut conn| async move { call.invoke_async::<Value>(&mut conn).await })
            .await?;
        parse_rotation(reply)
    }

    async fn revoke_family(&self, family: &FamilyRef) -> Result<(), StoreError> {
        let tag = principal_tag(&family.domain_id, &family.principal_id);
        let mut call = self.scripts.revoke_family.prepare_invoke();
        call.key(self.family_key(&tag, &family.family_id))
            .arg(&family.domain_id)
            .arg(&family.principal_id);
        self.exec(|mut conn| async move { call.invoke_async::<()>(&mut conn).await })
            .await
    }

    async fn revoke_principal(
        &self,
        domain_id: &str,
        principal_id: &str,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<(), StoreError> {
        let tag = principal_tag(domain_id, principal_id);
        let mut call = self.scripts.revoke_principal.prepare_invoke();
        call.key(self.revocation_key(&tag))
            .arg(ms(now_ms))
            .arg(ms(now_ms.saturating_add(ttl_ms)));
        self.exec(|mut conn| async move { call.invoke_async::<()>(&mut conn).await })
            .await
    }

    async fn acquire_attempt(
        &self,
        counter: &AttemptCounter,
        lease: &CheckLease,
        now_ms: u64,
    ) -> Result<LoginAttempt, StoreError> {
        let mut call = self.scripts.acquire_attempt.prepare_invoke();
        call.key(self.attempt_key(counter))
            .key(self.in_flight_key(counter))
            .arg(counter.limit)
            .arg(&lease.id)
            .arg(ms(lease.expires_at_ms))
            .arg(ms(now_ms));
        let (answer, retry_after_ms) = self
            .exec(|mut conn| async move { call.invoke_async::<(i64, i64)>(&mut conn).await })
            .await?;
        Ok(match answer {
            1 => LoginAttempt::Allowed,
            2 => LoginAttempt::Busy,
            _ => LoginAttempt::Locked {
                retry_after_ms: retry_after_ms.max(1) as u64,
            },
        })
    }

    async fn release_attempt(
        &self,
        counter: &AttemptCounter,
        lease: &CheckLease,
        outcome: CheckOutcome,
        _now_ms: u64,
    ) -> Result<(), StoreError> {
        let window_ms = match outcome {
            CheckOutcome::Failed { window_ms } => window_ms.max(1),
            CheckOutcome::NotFailed => 0,
        };
        let mut call = self.scripts.release_attempt.prepare_invoke();
        call.key(self.attempt_key(counter))
            .key(self.in_flight_key(counter))
            .arg(&lease.id)
            .arg(window_ms);
        self.exec(|mut conn| async move { call.invoke_async::<()>(&mut conn).await })
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.exec(|mut conn| async move { ::redis::cmd("PING").query_async::<()>(&mut conn).await })
            .await
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// The rotate script's reply codes.
const ROTATED: i64 = 1;
const DUPLICATE: i64 = 2;
const REUSE_DETECTED: i64 = 3;
const PASSWORD_CHANGED: i64 = 4;
const INVALID: i64 = 5;

fn parse_rotation(reply: Value) -> Result<Rotation, StoreError> {
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

/// The hash tag shared by all keys of one principal: 64 bits of
/// SHA-256(domain `\0` principal), hex. The NUL keeps ("ab", "c") and
/// ("a", "bc") apart.
pub(crate) fn principal_tag(domain_id: &str, principal_id: &str) -> String {
    let mut input = Vec::with_capacity(domain_id.len() + 1 + principal_id.len());
    input.extend_from_slice(domain_id.as_bytes());
    input.push(0);
    input.extend_from_slice(principal_id.as_bytes());
    hex::encode(&digest(&SHA256, &input).as_ref()[..8])
}

/// A millisecond timestamp as Redis takes it.
fn ms(value: u64) -> String {
    value.min(MAX_REDIS_MS).to_string()
}

/// Whether an error says something about the connection rather than about
/// the command: server replies (a script error, CLUSTERDOWN) do not.
fn is_connection_fault(error: &RedisError) -> bool {
    !matches!(error.kind(), ErrorKind::Server(_))
}

// ---------------------------------------------------------------------------
// Lua scripts. Each receives every key it touches in KEYS (all with one hash
// tag, so one slot) and runs atomically. Numbers arrive as decimal strings;
// timestamps handed to PEXPIREAT/PXAT are passed through as those strings,
// never re-formatted by Lua.

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
struct Scripts {
    start_family: Script,
    rotate: Script,
    revoke_family: Script,
    revoke_principal: Script,
    acquire_attempt: Script,
    release_attempt: Script,
}

impl Scripts {
    fn new() -> Self {
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

// ---------------------------------------------------------------------------
// Connections.

/// What to connect to (no I/O happens while building these).
#[expect(
    clippy::large_enum_variant,
    reason = "one per store, built once: its size does not matter"
)]
enum Target {
    Standalone(::redis::Client),
    Cluster(ClusterClient),
}

/// A live connection handle; cheap to clone (both are shared handles to one
/// multiplexed connection), so each call takes its own.
#[derive(Clone)]
enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

const NO_GENERATION: u64 = 0;

/// The current connection, if any, and how it has been doing.
#[derive(Default)]
struct Slot {
    conn: Option<Conn>,
    /// Bumped on every new connection (so starts at 1: 0 means none).
    generation: u64,
    /// Consecutive timeouts / connection faults of this connection.
    strikes: u32,
}

/// Lazily (re)connects: the first call dials; a connection that keeps
/// failing is dropped so a later call dials again. Redis being down at
/// start or later therefore never needs a restart of tokengate.
struct Link {
    target: Target,
    timeout: Duration,
    slot: Mutex<Slot>,
    /// One dialler at a time: during an outage a burst of calls must not
    /// turn into a burst of connection attempts.
    dialling: tokio::sync::Mutex<()>,
}

impl Link {
    fn new(target: Target, timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            slot: Mutex::new(Slot::default()),
            dialling: tokio::sync::Mutex::new(()),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // Every critical section is a few field assignments that cannot
        // leave the slot inconsistent, so a poisoned lock is still usable.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current(&self) -> Option<(u64, Conn)> {
        let slot = self.slot();
        slot.conn.clone().map(|c| (slot.generation, c))
    }

    async fn get(&self) -> RedisResult<(u64, Conn)> {
        if let Some(found) = self.current() {
            return Ok(found);
        }
        let _dialling = self.dialling.lock().await;
        // Another task may have connected while this one waited.
        if let Some(found) = self.current() {
            return Ok(found);
        }
        let conn = self.dial().await?;
        let mut slot = self.slot();
        slot.generation += 1;
        slot.strikes = 0;
        slot.conn = Some(conn.clone());
        tracing::debug!(generation = slot.generation, "Redis connection established");
        Ok((slot.generation, conn))
    }

    async fn dial(&self) -> RedisResult<Conn> {
        match &self.target {
            Target::Standalone(client) => {
                // No retries inside the manager: while Redis is down a call
                // should fail fast (Unavailable), and the next call tries
                // again; the manager still reconnects by itself when a
                // socket it holds closes.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(0);
                ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map(Conn::Standalone)
            }
            Target::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
        }
    }

    fn healthy(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.generation == generation {
            slot.strikes = 0;
        }
    }

    fn strike(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.generation != generation || slot.conn.is_none() {
            return;
        }
        slot.strikes += 1;
        if slot.strikes >= MAX_STRIKES {
            tracing::warn!(
                strikes = slot.strikes,
                "Redis connection keeps failing; dropping it to dial afresh"
            );
            slot.conn = None;
            slot.strikes = 0;
        }
    }
}

// ---------------------------------------------------------------------------
// Endpoint parsing.

/// An endpoint turned into a client, a log line and the secrets to scrub.
struct Resolved {
    target: Target,
    description: String,
    redactor: Redactor,
}

/// Removes secrets (passwords) from text that may quote them.
#[derive(Default)]
struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
        }
    }

    fn clean(&self, mut text: String) -> String {
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }
}

/// A URL split just enough to find its hosts and credentials.
struct UrlParts<'a> {
    scheme: &'a str,
    /// `user:password` or `:password`, without the `@`.
    userinfo: Option<&'a str>,
    /// The authority after the userinfo: `host:port[,host:port…]`.
    hosts: &'a str,
    /// Path and query, with their leading `/` or `?`.
    rest: &'a str,
}

fn split_url(url: &str) -> Result<UrlParts<'_>, RedisConfigError> {
    let (scheme, after) = url.split_once("://").ok_or_else(|| {
        RedisConfigError::InvalidUrl(
            "expected <scheme>://… (redis, rediss, redis+cluster, rediss+cluster)".into(),
        )
    })?;
    let authority_end = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(authority_end);
    // A password may contain '@' only percent-encoded, but split at the
    // last one anyway so a stray '@' never ends up among the hosts.
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    Ok(UrlParts {
        scheme,
        userinfo,
        hosts,
        rest,
    })
}

/// Registers the password part of a URL's userinfo, raw and decoded.
fn note_userinfo(redactor: &mut Redactor, userinfo: Option<&str>) {
    if let Some(userinfo) = userinfo {
        if let Some((_, password)) = userinfo.split_once(':') {
            redactor.add(password);
        } else {
            // `redis://secret@host` is read by some clients as a password.
            redactor.add(userinfo);
        }
    }
}

fn note_info(redactor: &mut Redactor, info: &ConnectionInfo) {
    if let Some(password) = info.redis_settings().password() {
        redactor.add(password);
    }
}

fn is_tls(addr: &ConnectionAddr) -> bool {
    matches!(addr, ConnectionAddr::TcpTls { .. })
}

fn describe_addr(addr: &ConnectionAddr) -> String {
    if is_tls(addr) {
        format!("{addr} (tls)")
    } else {
        addr.to_string()
    }
}

/// Makes sure rustls has a process-wide crypto provider before the first
/// TLS connection. redis-rs builds its TLS config with rustls' default
/// provider, which rustls only picks by itself when exactly one provider
/// feature is compiled in; another crate enabling a second one (`ring`)
/// would turn every `rediss://` connection into a panic. An application
/// that installed its own provider keeps it (installing then fails, which
/// is fine).
fn ensure_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn invalid(redactor: &Redactor, what: &str, error: &RedisError) -> RedisConfigError {
    RedisConfigError::InvalidUrl(redactor.clean(format!("{what}: {error}")))
}

fn resolve(endpoint: &RedisEndpoint, timeout: Duration) -> Result<Resolved, RedisConfigError> {
    let mut redactor = Redactor::default();
    let nodes: Vec<String> = match endpoint {
        RedisEndpoint::Url(url) => {
            let parts = split_url(url)?;
            note_userinfo(&mut redactor, parts.userinfo);
            let node_scheme = match parts.scheme {
                "redis+cluster" => "redis",
                "rediss+cluster" => "rediss",
                _ => return resolve_standalone(url, redactor),
            };
            let credentials = parts.userinfo.map(|u| format!("{u}@")).unwrap_or_default();
            parts
                .hosts
                .split(',')
                .map(|host| {
                    if host.trim().is_empty() {
                        Err(RedisConfigError::InvalidUrl(
                            "a cluster URL lists an empty node".into(),
                        ))
                    } else {
                        Ok(format!(
                            "{node_scheme}://{credentials}{}{}",
                            host.trim(),
                            parts.rest
                        ))
                    }
                })
                .collect::<Result<_, _>>()?
        }
        RedisEndpoint::ClusterNodes(nodes) => {
            for node in nodes {
                note_userinfo(&mut redactor, split_url(node)?.userinfo);
            }
            nodes.clone()
        }
    };
    if nodes.is_empty() {
        return Err(RedisConfigError::InvalidUrl(
            "no cluster nodes given".into(),
        ));
    }
    let mut infos = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let scheme = split_url(node)?.scheme;
        if scheme != "redis" && scheme != "rediss" {
            return Err(RedisConfigError::InvalidUrl(format!(
                "cluster node scheme must be redis or rediss, not {scheme}"
            )));
        }
        let info = node
            .as_str()
            .into_connection_info()
            .map_err(|e| invalid(&redactor, "cluster node", &e))?;
        note_info(&mut redactor, &info);
        infos.push(info);
    }
    if infos.iter().any(|i| is_tls(i.addr())) {
        ensure_tls_provider();
    }
    let addrs: Vec<String> = infos.iter().map(|i| describe_addr(i.addr())).collect();
    // The cluster client bounds each node connection and each response
    // itself too; the store's own timeout around every call stays the
    // authority.
    let client = ClusterClient::builder(infos)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .build()
        .map_err(|e| invalid(&redactor, "cluster", &e))?;
    Ok(Resolved {
        target: Target::Cluster(client),
        description: format!("redis cluster {}", addrs.join(",")),
        redactor,
    })
}

fn resolve_standalone(url: &str, mut redactor: Redactor) -> Result<Resolved, RedisConfigError> {
    let client = ::redis::Client::open(url).map_err(|e| invalid(&redactor, "standalone", &e))?;
    note_info(&mut redactor, client.get_connection_info());
    if is_tls(client.get_connection_info().addr()) {
        ensure_tls_provider();
    }
    Ok(Resolved {
        description: format!(
            "redis standalone {}",
            describe_addr(client.get_connection_info().addr())
        ),
        target: Target::Standalone(client),
        redactor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(100);

    #[test]
    fn tag_is_16_hex_of_sha256_of_domain_nul_principal() {
        let tag = principal_tag("domain-1", "user-1");
        assert_eq!(tag.len(), 16);
        let full = hex::encode(digest(&SHA256, b"domain-1\0user-1").as_ref());
        assert_eq!(tag, full[..16]);
        assert_ne!(principal_tag("ab", "c"), principal_tag("a", "bc"));
    }

    #[test]
    fn cluster_url_is_split_into_node_urls_with_shared_credentials() {
        let r = resolve(
            &RedisEndpoint::Url(
                "redis+cluster://user:pw%21x@127.0.0.1:7000,127.0.0.1:7001/0".into(),
            ),
            T,
        )
        .unwrap();
        assert!(matches!(r.target, Target::Cluster(_)));
        assert_eq!(r.description, "redis cluster 127.0.0.1:7000,127.0.0.1:7001");
        assert!(r.redactor.secrets.iter().any(|s| s == "pw%21x"));
        assert!(r.redactor.secrets.iter().any(|s| s == "pw!x"));
    }

    #[test]
    fn standalone_url_describes_host_without_credentials() {
        let r = resolve(
            &RedisEndpoint::Url("redis://:hunter2@10.0.0.5:6380/2".into()),
            T,
        )
        .unwrap();
        assert!(matches!(r.target, Target::Standalone(_)));
        assert_eq!(r.description, "redis standalone 10.0.0.5:6380");
        assert_eq!(r.redactor.clean("bad hunter2 here".into()), "bad *** here");
    }

    #[test]
    fn tls_urls_are_accepted_and_marked() {
        let r = resolve(&RedisEndpoint::Url("rediss://cache.example:6379".into()), T).unwrap();
        assert_eq!(r.description, "redis standalone cache.example:6379 (tls)");
        let r = resolve(
            &RedisEndpoint::Url("rediss+cluster://a.example:1,b.example:2".into()),
            T,
        )
        .unwrap();
        assert_eq!(
            r.description,
            "redis cluster a.example:1 (tls),b.example:2 (tls)"
        );
    }

    #[test]
    fn bad_endpoints_are_config_errors_without_the_password() {
        for url in [
            "http://:topsecret@host:1",
            "redis+cluster://:topsecret@",
            "redis+cluster://:topsecret@a:1,,b:2",
            "no-scheme-topsecret",
        ] {
            let err = resolve(&RedisEndpoint::Url(url.into()), T)
                .err()
                .expect(url);
            assert!(!err.to_string().contains("topsecret"), "{url}: {err}");
        }
        assert!(resolve(&RedisEndpoint::ClusterNodes(vec![]), T).is_err());
        assert!(
            resolve(
                &RedisEndpoint::ClusterNodes(vec!["redis+cluster://a:1".into()]),
                T
            )
            .is_err()
        );
    }

    #[test]
    fn config_debug_hides_urls() {
        let config = RedisStoreConfig::new("redis://:topsecret@h:1");
        assert!(!format!("{config:?}").contains("topsecret"));
        let config = RedisStoreConfig::cluster(["redis://:topsecret@h:1"]);
        assert!(!format!("{config:?}").contains("topsecret"));
    }

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
