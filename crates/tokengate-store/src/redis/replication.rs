//! Confirmed rotations (`store.replica_acks` ≥ 1): a rotation's answer is
//! given only once enough replicas hold its write, so a failover cannot
//! lose a rotation whose tokens a client already has.
//!
//! `WAIT` counts the acknowledgements of the writes made *on the
//! connection it is sent on*, and blocks that connection while it waits.
//! On the store's shared multiplexed connection it would hold up every
//! call queued behind it, so confirmed rotations run on connections of
//! their own: each is lent to one rotation at a time, which sends its
//! script and then `WAIT` there (on a cluster, to the family's master).

use std::sync::Mutex;
use std::time::Duration;

use ::redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use ::redis::{Cmd, RedisResult};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::link::{Conn, Link, Target};

/// Connections set apart for confirmed rotations: at most this many wait
/// for replicas at once; more rotations queue for a free one.
pub(super) const CONFIRMING_CONNECTIONS: usize = 16;

/// The connections confirmed rotations borrow, one rotation each at a time.
pub(super) struct Confirmer {
    /// Replicas that must acknowledge a rotation.
    wanted: u32,
    /// How long `WAIT` may wait, ms (the store's call timeout).
    wait_ms: u64,
    /// The connections; a lent one is used by its borrower alone.
    links: Vec<Link>,
    /// Indexes of the connections not lent out.
    free: Mutex<Vec<usize>>,
    /// One permit per free connection.
    permits: Semaphore,
}

/// A connection lent to one rotation; given back when dropped.
pub(super) struct Lease<'a> {
    /// Whose connection.
    confirmer: &'a Confirmer,
    /// Which one.
    index: usize,
    /// Held until the connection is back in the free list.
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// The lent connection's link.
    pub(super) fn link(&self) -> &Link {
        &self.confirmer.links[self.index]
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.confirmer
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.index);
    }
}

impl Confirmer {
    /// `wanted` acknowledgements per rotation, one connection per target
    /// (each dials lazily; [`CONFIRMING_CONNECTIONS`] of them), waiting at
    /// most `timeout` for replicas.
    pub(super) fn new(wanted: u32, timeout: Duration, targets: Vec<Target>) -> Self {
        let response_timeout = Self::response_timeout(timeout);
        let count = targets.len();
        Self {
            wanted,
            wait_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            links: targets
                .into_iter()
                .map(|target| Link::new(target, timeout, response_timeout))
                .collect(),
            free: Mutex::new((0..count).collect()),
            permits: Semaphore::new(count),
        }
    }

    /// How long a confirming connection waits for a response: the
    /// script's time plus `WAIT`'s, so it never gives up before `WAIT`
    /// itself answers.
    pub(super) fn response_timeout(timeout: Duration) -> Duration {
        timeout.saturating_mul(2)
    }

    /// Replicas that must acknowledge a rotation.
    pub(super) fn wanted(&self) -> u32 {
        self.wanted
    }

    /// Borrows a free connection, waiting for one if all are lent. `None`
    /// only if the confirmer has no connections at all.
    pub(super) async fn lease(&self) -> Option<Lease<'_>> {
        // The semaphore is never closed, so acquiring only ever waits.
        let permit = self.permits.acquire().await.ok()?;
        // A permit means a free index: both are given back together.
        let index = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
        Some(Lease {
            confirmer: self,
            index,
            _permit: permit,
        })
    }

    /// `WAIT` on `conn` for the writes it made; on a cluster, at the master
    /// of `key`'s slot, where the script ran. Returns how many replicas
    /// acknowledged.
    pub(super) async fn wait(&self, conn: &mut Conn, key: &str) -> RedisResult<u32> {
        let mut wait: Cmd = ::redis::cmd("WAIT");
        wait.arg(self.wanted).arg(self.wait_ms);
        let acknowledged: i64 = match conn {
            Conn::Standalone(c) => wait.query_async(c).await?,
            Conn::Sentinel(c) => wait.query_async(c).await?,
            Conn::Cluster(c) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::with_key(key, SlotAddr::Master),
                ));
                ::redis::from_redis_value(c.route_command(wait, route).await?)?
            }
        };
        Ok(u32::try_from(acknowledged).unwrap_or(0))
    }
}
