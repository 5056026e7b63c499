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
//! | `<prefix>fam:{tag}:<family_id>` | hash | `gen` (current generation), `key` (its key id), `prev` (the key id of generation `gen − 1`, after the first refresh), `exp` (newest token's expiry, ms), `iat` (issue, ms), `end` (absolute end, ms), `fp` (password fingerprint, hex), `rev` (`0`/`1`), `gu` (grace window end, ms, while an answer is kept), `ref` (last refresh, ms, after the first), `pro` and `ip` (the login's protocol and client address, ≤ 64 bytes each) | when its newest token expires, never after `end` |
//! | `<prefix>ans:{tag}:<family_id>` | string | the last winner's encrypted answer | at the end of its grace window (or of the spent token, if sooner) |
//! | `<prefix>ses:{tag}` | sorted set | the session index: the ids of the principal's families with a record, scored by the record's end (ms); entries ended by time are dropped on every write, revoked ones when sessions are listed or ended | at its latest score: the latest end of the principal's family records |
//! | `<prefix>ado:{tag}:<family_id>` | string | `1`: the SpaceONE refresh token this family was derived from was adopted (rotation rule 0) | when that SpaceONE token expires |
//! | `<prefix>rev:{tag}` | hash | `before`, `until` | at `until`: the latest end of the principal's family records when it was set (at most `ttl_ms` later) |
//! | `<prefix>login:{counter}` | string | failed checks in the window | at the window's end |
//! | `<prefix>login-checks:{counter}` | sorted set | lease ids of checks in flight, scored by lease end | at the longest lease's end |
//!
//! A live family costs one hash and one entry of its principal's session
//! index (plus, for a principal's families together, the index's key),
//! however often it is refreshed: a refresh rewrites the
//! record in place and leaves nothing behind. An abandoned family costs
//! nothing once its newest token has expired. The grace answer lives in its
//! own key only because Redis 7.0 cannot expire a hash field: that way it
//! disappears with its window (SPEC §3), one at most per family.
//!
//! The record's key names its owner through the hash tag, so it does not
//! repeat the domain and principal ids: another principal's request finds
//! another key (rotation rule 1).
//!
//! A failed-login counter's id is already a digest, so it is its own hash
//! tag: its two keys share a slot, apart from any principal's.
//!
//! Decisions compare against the `now_ms` the caller passes, never Redis'
//! clock, so this store decides exactly as [`crate::MemoryStore`] does; the
//! TTLs only bound how long Redis keeps a record.
//!
//! Every rotation is the script `scripts/rotate.lua`: one round trip, one
//! slot, applying the rotation rules documented on [`Rotation`] with the
//! same numbers as the memory store. Rotation rule 6 ("diverged") is what
//! makes a failover that lost writes visible: a token of a generation the
//! record never reached, or with a key it does not hold, ends the family.
//! Rotation rule 8 ("re-sent") matters only here: the cluster client
//! re-sends a command when a connection drops before the reply arrives,
//! and without that rule a rotation that succeeded but whose reply was lost
//! would revoke its own family.

mod config;
mod link;
mod replication;
mod scripts;
mod url;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::{RedisError, RedisResult, Value};
use aws_lc_rs::digest::{SHA256, digest};

pub use self::config::{RedisConfigError, RedisEndpoint, RedisStoreConfig, SentinelAuth};
use self::link::{Conn, Link, NO_GENERATION, is_connection_fault, is_demoted};
use self::replication::{CONFIRMING_CONNECTIONS, Confirmer};
use self::scripts::{
    Scripts, hands_out_tokens, ms, parse_attempt, parse_rotation, parse_session, parse_sessions,
};
use self::url::{Redactor, resolve};
use crate::{
    AttemptCounter, CheckLease, CheckOutcome, FamilyRecord, FamilyRef, KeyId, LoginAttempt,
    MAX_LISTED_SESSIONS, RefreshStore, RotateRequest, Rotation, SessionInfo, SessionSelector,
    StoreError,
};

/// The most index entries one list of sessions reads: the index holds
/// live families only (ended ones leave it as they are found), so this only
/// bounds the work for a principal with absurdly many sessions (beyond it,
/// the list is taken from the latest-ending ones).
const MAX_LISTED_INDEX_READ: isize = 10_000;

/// The most index entries one end of sessions reads; the core repeats the
/// call until nothing more ends.
const MAX_ENDED_INDEX_READ: isize = 1_000;

/// Refresh state in Redis (standalone or cluster). See the module docs for
/// the key layout; every state change is one Lua script on one slot.
pub struct RedisStore {
    /// The connection, dialled lazily and replaced when it keeps failing.
    link: Link,
    /// `store.key_prefix`, in front of every key.
    prefix: String,
    /// `store.timeout_ms`: bounds every call, connecting included.
    timeout: Duration,
    /// For start-up logs, without credentials.
    description: String,
    /// Scrubs the endpoint's passwords from error texts.
    redactor: Redactor,
    /// The Lua scripts, hashed once.
    scripts: Scripts,
    /// With `store.replica_acks` ≥ 1: the connections that rotations
    /// confirmed by replicas run on.
    confirmer: Option<Confirmer>,
}

/// What a call does with its connection when it gives up waiting.
#[derive(Clone, Copy)]
enum OnTimeout {
    /// Count a strike: the connection is dropped after a few in a row.
    Strike,
    /// Drop it at once: it may still be blocked in `WAIT`, and every later
    /// command on it would queue behind that.
    Discard,
}

/// The most replica acknowledgements a config may ask for: more than any
/// real deployment has replicas of one master.
const MAX_REPLICA_ACKS: u32 = 16;

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
        check_settings(&config)?;
        let resolved = resolve(
            &config.endpoint,
            config.timeout,
            config.timeout,
            &config.sentinel_auth,
        )?;
        let mut description = format!("{} (prefix {})", resolved.description, config.key_prefix);
        let confirmer = if config.replica_acks > 0 {
            description.push_str(&format!(
                ", rotations confirmed by {} replica(s)",
                config.replica_acks
            ));
            // Their responses include `WAIT`'s own wait.
            let targets = (0..CONFIRMING_CONNECTIONS)
                .map(|_| {
                    resolve(
                        &config.endpoint,
                        config.timeout,
                        Confirmer::response_timeout(config.timeout),
                        &config.sentinel_auth,
                    )
                    .map(|r| r.target)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(Confirmer::new(config.replica_acks, config.timeout, targets))
        } else {
            None
        };
        let store = Self {
            link: Link::new(resolved.target, config.timeout, config.timeout),
            prefix: config.key_prefix,
            timeout: config.timeout,
            description,
            redactor: resolved.redactor,
            scripts: Scripts::new(),
            confirmer,
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

    /// Runs `op` on the shared connection, all of it (connecting included)
    /// bounded by the timeout, and maps the outcome to a [`StoreError`].
    async fn exec<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut + Send,
        Fut: Future<Output = RedisResult<T>> + Send,
        T: Send,
    {
        self.exec_on(&self.link, self.timeout, OnTimeout::Strike, op)
            .await
    }

    /// Runs `op` on `link`'s connection, all of it (connecting included)
    /// bounded by `bound`, and maps the outcome to a [`StoreError`]. A
    /// connection that answers it is no master (a Sentinel failover) is
    /// dropped at once, so the next call finds the new one.
    async fn exec_on<T, F, Fut>(
        &self,
        link: &Link,
        bound: Duration,
        on_timeout: OnTimeout,
        op: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut + Send,
        Fut: Future<Output = RedisResult<T>> + Send,
        T: Send,
    {
        // Which connection the attempt used, so a timeout is charged to it
        // and not to a newer one that another task dialled meanwhile.
        let used = AtomicU64::new(NO_GENERATION);
        let attempt = async {
            let (generation, conn) = link.get().await.map_err(|e| self.map_error(e))?;
            used.store(generation, Ordering::Relaxed);
            match op(conn).await {
                Ok(value) => {
                    link.healthy(generation);
                    Ok(value)
                }
                Err(error) => {
                    if is_demoted(&error)
                        || (is_connection_fault(&error) && link.follows_sentinel())
                    {
                        link.discard(generation);
                    } else if is_connection_fault(&error) {
                        link.strike(generation);
                    }
                    Err(self.map_error(error))
                }
            }
        };
        match tokio::time::timeout(bound, attempt).await {
            Ok(result) => result,
            Err(_elapsed) => {
                let generation = used.load(Ordering::Relaxed);
                if generation != NO_GENERATION {
                    let on_timeout = if link.follows_sentinel() {
                        OnTimeout::Discard
                    } else {
                        on_timeout
                    };
                    match on_timeout {
                        OnTimeout::Strike => link.strike(generation),
                        OnTimeout::Discard => link.discard(generation),
                    }
                }
                Err(StoreError::Timeout)
            }
        }
    }

    /// A Redis error as the store reports it, never quoting a password.
    fn map_error(&self, error: RedisError) -> StoreError {
        if error.is_timeout() {
            StoreError::Timeout
        } else {
            StoreError::Unavailable(self.redactor.clean(format!("redis: {error}")))
        }
    }

    /// `<prefix><kind>:{<tag>}:<id>`: see the key layout above.
    fn key(&self, kind: &str, tag: &str, id: &str) -> String {
        format!("{}{kind}:{{{tag}}}:{id}", self.prefix)
    }

    /// A family's one record.
    fn family_key(&self, tag: &str, family_id: &str) -> String {
        self.key("fam", tag, family_id)
    }

    /// The last winner's sealed answer of a family, kept for its grace
    /// window.
    fn answer_key(&self, tag: &str, family_id: &str) -> String {
        self.key("ans", tag, family_id)
    }

    /// A family's adoption marker: the SpaceONE token it was derived from
    /// was adopted (rotation rule 0).
    fn adoption_key(&self, tag: &str, family_id: &str) -> String {
        self.key("ado", tag, family_id)
    }

    /// A principal's session index: its families with a record, scored by
    /// the record's end.
    fn principal_index_key(&self, tag: &str) -> String {
        format!("{}ses:{{{tag}}}", self.prefix)
    }

    /// The ids in a principal's session index, the latest ending first (at
    /// most `limit`).
    async fn indexed_families(&self, tag: &str, limit: isize) -> Result<Vec<String>, StoreError> {
        let index = self.principal_index_key(tag);
        self.exec(|mut conn| async move {
            ::redis::cmd("ZRANGE")
                .arg(&index)
                .arg(0)
                .arg(limit - 1)
                .arg("REV")
                .query_async::<Vec<String>>(&mut conn)
                .await
        })
        .await
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

    /// A principal's revocation marker (`revoke_principal`).
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
            .key(self.answer_key(&tag, &f.family_id))
            .key(self.principal_index_key(&tag))
            .arg(&first_key.0)
            .arg(ms(key_expires_at_ms))
            .arg(ms(family.issued_at_ms))
            .arg(ms(family.expires_at_ms))
            .arg(hex::encode(family.password_fingerprint))
            // The record lives as long as its newest token, never past the
            // family's end.
            .arg(ms(key_expires_at_ms.min(family.expires_at_ms)))
            .arg(&family.origin.protocol)
            .arg(&family.origin.client_address);
        self.exec(|mut conn| async move { call.invoke_async::<()>(&mut conn).await })
            .await
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<Rotation, StoreError> {
        self.run_rotation(req, None).await
    }

    async fn adopt(
        &self,
        family: &FamilyRecord,
        req: &RotateRequest,
    ) -> Result<Rotation, StoreError> {
        if family.family != req.family {
            return Ok(Rotation::Invalid);
        }
        self.run_rotation(req, Some(family)).await
    }

    async fn revoke_family(&self, family: &FamilyRef) -> Result<(), StoreError> {
        let tag = principal_tag(&family.domain_id, &family.principal_id);
        let mut call = self.scripts.revoke_family.prepare_invoke();
        call.key(self.family_key(&tag, &family.family_id))
            .key(self.answer_key(&tag, &family.family_id));
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
            .key(self.principal_index_key(&tag))
            .arg(ms(now_ms))
            .arg(ms(now_ms.saturating_add(ttl_ms)));
        self.exec(|mut conn| async move { call.invoke_async::<()>(&mut conn).await })
            .await
    }

    async fn list_sessions(
        &self,
        domain_id: &str,
        principal_id: &str,
        now_ms: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let tag = principal_tag(domain_id, principal_id);
        let ids = self.indexed_families(&tag, MAX_LISTED_INDEX_READ).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = self.scripts.list_sessions.prepare_invoke();
        call.key(self.principal_index_key(&tag))
            .key(self.revocation_key(&tag))
            .arg(ms(now_ms))
            .arg(MAX_LISTED_SESSIONS);
        for id in &ids {
            call.key(self.family_key(&tag, id)).arg(id);
        }
        let reply = self
            .exec(|mut conn| async move { call.invoke_async::<Vec<String>>(&mut conn).await })
            .await?;
        parse_sessions(reply)
    }

    async fn session(
        &self,
        family: &FamilyRef,
        now_ms: u64,
    ) -> Result<Option<SessionInfo>, StoreError> {
        let tag = principal_tag(&family.domain_id, &family.principal_id);
        let mut call = self.scripts.session.prepare_invoke();
        call.key(self.family_key(&tag, &family.family_id))
            .key(self.revocation_key(&tag))
            .arg(ms(now_ms));
        let reply = self
            .exec(|mut conn| async move { call.invoke_async::<Vec<String>>(&mut conn).await })
            .await?;
        if reply.is_empty() {
            return Ok(None);
        }
        parse_session(family.family_id.clone(), &reply).map(Some)
    }

    async fn end_sessions(
        &self,
        domain_id: &str,
        principal_id: &str,
        which: &SessionSelector,
        now_ms: u64,
    ) -> Result<Vec<String>, StoreError> {
        let tag = principal_tag(domain_id, principal_id);
        let ids = match which {
            SessionSelector::One(id) => vec![id.clone()],
            SessionSelector::AllBut(kept) => {
                let mut ids = self.indexed_families(&tag, MAX_ENDED_INDEX_READ).await?;
                ids.retain(|id| id != kept);
                ids
            }
            SessionSelector::All => self.indexed_families(&tag, MAX_ENDED_INDEX_READ).await?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = self.scripts.end_sessions.prepare_invoke();
        call.key(self.principal_index_key(&tag))
            .key(self.revocation_key(&tag))
            .arg(ms(now_ms));
        for id in &ids {
            call.key(self.family_key(&tag, id))
                .key(self.answer_key(&tag, id))
                .arg(id);
        }
        self.exec(|mut conn| async move { call.invoke_async::<Vec<String>>(&mut conn).await })
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
        let reply = self
            .exec(|mut conn| async move { call.invoke_async::<(i64, i64)>(&mut conn).await })
            .await?;
        Ok(parse_attempt(reply))
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

    fn keeps_answers(&self) -> bool {
        self.confirmer.is_some()
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

impl RedisStore {
    /// `rotate.lua` for one refresh (`adopt`: with rotation rule 0 for
    /// that family first), confirmed by replicas when the store asks for
    /// it: one round trip either way.
    async fn run_rotation(
        &self,
        req: &RotateRequest,
        adopt: Option<&FamilyRecord>,
    ) -> Result<Rotation, StoreError> {
        let f = &req.family;
        let tag = principal_tag(&f.domain_id, &f.principal_id);
        let family_key = self.family_key(&tag, &f.family_id);
        let answer_key = self.answer_key(&tag, &f.family_id);
        let mut call = self.scripts.rotate.prepare_invoke();
        call.key(&family_key)
            .key(&answer_key)
            .key(self.revocation_key(&tag))
            .key(self.principal_index_key(&tag))
            .arg(req.presented_generation)
            .arg(&req.presented.0)
            .arg(ms(req.presented_expires_at_ms))
            .arg(&req.successor.0)
            .arg(ms(req.successor_expires_at_ms))
            .arg(hex::encode(req.password_fingerprint))
            .arg(ms(req.now_ms))
            .arg(ms(req.now_ms.saturating_add(req.grace_ms)))
            .arg(req.answer.as_slice())
            .arg(if self.confirmer.is_some() { "1" } else { "" });
        if let Some(family) = adopt {
            call.key(self.adoption_key(&tag, &f.family_id))
                .arg("1")
                .arg(ms(family.issued_at_ms))
                .arg(ms(family.expires_at_ms))
                .arg(hex::encode(family.password_fingerprint))
                .arg(&family.origin.protocol)
                .arg(&family.origin.client_address);
        }
        let Some(confirmer) = &self.confirmer else {
            let reply = self
                .exec(|mut conn| async move { call.invoke_async::<Value>(&mut conn).await })
                .await?;
            return parse_rotation(reply);
        };
        // A confirmed rotation: the script, then `WAIT` for its write, on a
        // connection lent to this call alone (see `replication`).
        let lease = tokio::time::timeout(self.timeout, confirmer.lease())
            .await
            .map_err(|_| StoreError::Timeout)?
            .ok_or_else(|| StoreError::Unavailable("redis: no confirming connection".into()))?;
        let wait_key = family_key.clone();
        // The script's bound plus `WAIT`'s own, which answers by then.
        let bound = self.timeout.saturating_mul(2);
        let (reply, acknowledged, conn) = self
            .exec_on(
                lease.link(),
                bound,
                OnTimeout::Discard,
                |mut conn| async move {
                    let reply = call.invoke_async::<Value>(&mut conn).await?;
                    let acknowledged = if hands_out_tokens(&reply) {
                        Some(confirmer.wait(&mut conn, &wait_key).await?)
                    } else {
                        None
                    };
                    Ok((reply, acknowledged, conn))
                },
            )
            .await?;
        drop(lease);
        if let Some(acknowledged) = acknowledged {
            if acknowledged < confirmer.wanted() {
                return Err(StoreError::NotReplicated {
                    acknowledged,
                    wanted: confirmer.wanted(),
                });
            }
            self.settle(conn, family_key, answer_key, req);
        }
        parse_rotation(reply)
    }

    /// Confirms, off the request's path, that a rotation's answer was
    /// given: it is no longer kept for a retry (rotation rule 9). If this
    /// is lost, the answer stays until the spent token expires; a copy of
    /// that token gets the same pair meanwhile, never a second chain.
    fn settle(&self, mut conn: Conn, family_key: String, answer_key: String, req: &RotateRequest) {
        let script = self.scripts.settle.clone();
        let made = req.presented_generation.saturating_add(1);
        let now = ms(req.now_ms);
        let timeout = self.timeout;
        tokio::spawn(async move {
            let mut call = script.prepare_invoke();
            call.key(family_key).key(answer_key).arg(made).arg(now);
            let settled = tokio::time::timeout(timeout, call.invoke_async::<i64>(&mut conn)).await;
            if !matches!(settled, Ok(Ok(_))) {
                tracing::debug!(
                    "a confirmed rotation's answer could not be settled; it expires with the spent token"
                );
            }
        });
    }
}

/// The checks of a config that need no URL parsing.
fn check_settings(config: &RedisStoreConfig) -> Result<(), RedisConfigError> {
    if config.key_prefix.contains(['{', '}']) {
        return Err(RedisConfigError::InvalidPrefix);
    }
    if config.timeout.is_zero() {
        return Err(RedisConfigError::ZeroTimeout);
    }
    if config.replica_acks > MAX_REPLICA_ACKS {
        return Err(RedisConfigError::TooManyReplicaAcks {
            max: MAX_REPLICA_ACKS,
        });
    }
    Ok(())
}

impl RedisStoreConfig {
    /// Checks the config as [`RedisStore::connect`] does, without
    /// connecting, and describes where it points (never credentials): for
    /// `check-config`.
    pub fn check(&self) -> Result<String, RedisConfigError> {
        check_settings(self)?;
        let resolved = resolve(
            &self.endpoint,
            self.timeout,
            self.timeout,
            &self.sentinel_auth,
        )?;
        Ok(match self.replica_acks {
            0 => resolved.description,
            n => format!(
                "{}, rotations confirmed by {n} replica(s)",
                resolved.description
            ),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_16_hex_of_sha256_of_domain_nul_principal() {
        let tag = principal_tag("domain-1", "user-1");
        assert_eq!(tag.len(), 16);
        let full = hex::encode(digest(&SHA256, b"domain-1\0user-1").as_ref());
        assert_eq!(tag, full[..16]);
        assert_ne!(principal_tag("ab", "c"), principal_tag("a", "bc"));
    }
}
