//! Connection recovery: one shared connection, dialled lazily, and
//! dropped after a few consecutive failures ("strikes") so the next call
//! dials afresh. Redis being down at start or later never needs a restart
//! of tokengate. Behind Redis Sentinel, dialling asks the sentinels for the
//! current master, so a dropped connection is how a failover is followed.

use std::sync::Mutex;
use std::time::Duration;

use ::redis::AsyncConnectionConfig;
use ::redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::sentinel::SentinelClient;
use ::redis::{
    Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};

/// Consecutive timeouts or connection-level failures after which the
/// current connection is thrown away and the next call dials afresh. The
/// client libraries reconnect by themselves when a socket closes, but not
/// when it silently stops answering (a half-open TCP connection after a
/// failover or a NAT drop): without this the store would time out until the
/// kernel gives up on the socket, which takes minutes.
const MAX_STRIKES: u32 = 3;

/// Whether an error says something about the connection rather than about
/// the command: server replies (a script error, CLUSTERDOWN) do not.
pub(super) fn is_connection_fault(error: &RedisError) -> bool {
    !matches!(error.kind(), ErrorKind::Server(_))
}

/// Whether an error says the server is no longer the master (a Sentinel
/// failover demoted it, or it came back as a replica): the connection must
/// go, so the next call asks the sentinels where the master is now.
pub(super) fn is_demoted(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
        || error.to_string().contains("READONLY")
}

/// What to connect to (no I/O happens while building these).
pub(super) enum Target {
    /// One server.
    Standalone(::redis::Client),
    /// A cluster, found through its seed nodes.
    Cluster(ClusterClient),
    /// The master that Redis Sentinel names, asked again on every dial.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// A live connection handle; cheap to clone (all are shared handles to one
/// multiplexed connection), so each call takes its own.
#[derive(Clone)]
pub(super) enum Conn {
    /// To one server; reconnects by itself when its socket closes.
    Standalone(ConnectionManager),
    /// To a cluster; routes each command to its slot's node.
    Cluster(ClusterConnection),
    /// To the master Sentinel named; never reconnects by itself. The
    /// manager's reconnection would dial the same address again, and after
    /// a failover that address may be a restarted, empty node that calls
    /// itself master: only the sentinels may say where the master is.
    Sentinel(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Sentinel(c) => c.req_packed_command(cmd),
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
            Self::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Sentinel(c) => c.get_db(),
        }
    }
}

/// The generation of no connection at all (connections count from 1).
pub(super) const NO_GENERATION: u64 = 0;

/// The current connection, if any, and how it has been doing.
#[derive(Default)]
struct Slot {
    /// The connection calls use; `None` until dialled or after it was dropped.
    conn: Option<Conn>,
    /// Bumped on every new connection (so starts at 1: 0 means none).
    generation: u64,
    /// Consecutive timeouts / connection faults of this connection.
    strikes: u32,
}

/// Lazily (re)connects: the first call dials; a connection that keeps
/// failing is dropped so a later call dials again. Redis being down at
/// start or later therefore never needs a restart of tokengate.
pub(super) struct Link {
    /// What to dial.
    target: Target,
    /// Bounds dialling.
    timeout: Duration,
    /// Bounds a standalone server's responses (a connection that waits
    /// for replicas needs longer than the call timeout).
    response_timeout: Duration,
    /// The connection and its strikes, behind a lock held for a few field
    /// assignments only, never across an await.
    slot: Mutex<Slot>,
    /// One dialler at a time: during an outage a burst of calls must not
    /// turn into a burst of connection attempts.
    dialling: tokio::sync::Mutex<()>,
}

impl Link {
    /// A link to `target` that has not dialled yet; `timeout` bounds
    /// dialling and `response_timeout`, on a standalone server or behind
    /// Sentinel, every response.
    pub(super) fn new(target: Target, timeout: Duration, response_timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            response_timeout,
            slot: Mutex::new(Slot::default()),
            dialling: tokio::sync::Mutex::new(()),
        }
    }

    /// The slot, locked.
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // Every critical section is a few field assignments that cannot
        // leave the slot inconsistent, so a poisoned lock is still usable.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current connection and its generation, if there is one.
    fn current(&self) -> Option<(u64, Conn)> {
        let slot = self.slot();
        slot.conn.clone().map(|c| (slot.generation, c))
    }

    /// The current connection and its generation, dialling one if there
    /// is none.
    pub(super) async fn get(&self) -> RedisResult<(u64, Conn)> {
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

    /// Opens a new connection to the target.
    async fn dial(&self) -> RedisResult<Conn> {
        match &self.target {
            Target::Standalone(client) => self.manage(client.clone()).await,
            Target::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
            Target::Sentinel(sentinel) => {
                // The sentinels name the master and the client checks its
                // ROLE before handing it out.
                let master = sentinel.lock().await.async_get_client().await?;
                tracing::info!(
                    master = %master.get_connection_info().addr(),
                    "Redis Sentinel named the master"
                );
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.response_timeout));
                master
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Conn::Sentinel)
            }
        }
    }

    /// Whether the target is found through Redis Sentinel: then any
    /// connection fault drops the connection at once, so the next call
    /// asks the sentinels again instead of trusting the old address.
    pub(super) fn follows_sentinel(&self) -> bool {
        matches!(self.target, Target::Sentinel(_))
    }

    /// A managed connection to one server.
    async fn manage(&self, client: ::redis::Client) -> RedisResult<Conn> {
        // No retries inside the manager: while Redis is down a call should
        // fail fast (Unavailable), and the next call tries again; the
        // manager still reconnects by itself when a socket it holds closes.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(0);
        ConnectionManager::new_with_config(client, config)
            .await
            .map(Conn::Standalone)
    }

    /// Connection `generation` must not be used again (it answered that it
    /// is no master, or it may still be blocked in a command the caller
    /// gave up on): the next call dials afresh.
    pub(super) fn discard(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.generation == generation && slot.conn.is_some() {
            tracing::debug!(generation, "Redis connection discarded");
            slot.conn = None;
            slot.strikes = 0;
        }
    }

    /// A call on connection `generation` succeeded: its strikes are
    /// forgiven.
    pub(super) fn healthy(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.generation == generation {
            slot.strikes = 0;
        }
    }

    /// A call on connection `generation` timed out or hit a connection
    /// fault; at [`MAX_STRIKES`] in a row the connection is dropped. A
    /// strike against an older connection than the current one is ignored.
    pub(super) fn strike(&self, generation: u64) {
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
