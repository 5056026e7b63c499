//! Lingering close: how an HTTP/1.1 connection that served a request ends
//! when hyper is done with it but the client has not closed its side. When
//! the server answers before reading a whole upload — a 413 — closing the
//! socket at once makes the kernel answer the client's next segment with a
//! reset, and an HTTP client busy writing the body reports "broken pipe"
//! instead of the 413 already in its buffer. So: half-close (the client sees
//! the end of our answers), then read and discard what the client still
//! sends until it closes too, for a bounded time and number of bytes
//! (nginx's `lingering_close`), with a bounded number of connections
//! lingering at once.
//!
//! Reading on after the answer is work an attacker can ask for: a loop of
//! oversized uploads on loopback tripled the server's CPU with unbounded
//! lingering (BENCHMARKS.md, "Hostile traffic"). So the lingering connections of a
//! listener share one discard budget, [`DISCARD_BYTES_PER_SECOND`], in
//! [`Lingering`]: a refused upload now and then is read to its end; a
//! flood of them spends the budget and is closed at once, as without
//! lingering.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The longest a closed connection keeps reading the client.
pub(super) const LINGER_TIME: Duration = Duration::from_secs(2);

/// The most a closed connection reads and discards.
pub(super) const LINGER_MAX_BYTES: usize = 16 * 1024 * 1024;

/// What all lingering connections together may read and discard, per
/// second (and at most at once).
pub(super) const DISCARD_BYTES_PER_SECOND: u64 = 32 * 1024 * 1024;

/// A token bucket of bytes that may be discarded.
pub(super) struct DiscardBudget {
    rate: u64,
    state: Mutex<BudgetState>,
}

struct BudgetState {
    available: u64,
    refilled_at: std::time::Instant,
}

impl DiscardBudget {
    /// A full bucket of `rate` bytes, refilled at `rate` bytes per second.
    pub(super) fn new(rate: u64) -> Self {
        Self {
            rate,
            state: Mutex::new(BudgetState {
                available: rate,
                refilled_at: std::time::Instant::now(),
            }),
        }
    }

    /// Takes `bytes` from the bucket at `now`; false (and nothing taken)
    /// if there are not that many.
    pub(super) fn try_spend(&self, bytes: u64, now: std::time::Instant) -> bool {
        // A poisoned lock only means a panic elsewhere mid-update: the
        // counters are still usable.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(state.refilled_at);
        let refill = (elapsed.as_secs_f64() * self.rate as f64) as u64;
        if refill > 0 {
            state.available = (state.available + refill).min(self.rate);
            state.refilled_at = now;
        }
        if state.available < bytes {
            return false;
        }
        state.available -= bytes;
        true
    }
}

/// The most connections lingering at once; past it, connections close at
/// once (a flood of refused uploads cannot buy itself 2 s of reading each).
pub(super) const MAX_LINGERING: usize = 256;

/// What the lingering closes of one listener share: a bounded number of
/// places and one discard budget.
pub(super) struct Lingering {
    lingering: AtomicUsize,
    max_lingering: usize,
    budget: DiscardBudget,
}

impl Default for Lingering {
    /// [`MAX_LINGERING`] places, [`DISCARD_BYTES_PER_SECOND`].
    fn default() -> Self {
        Self::new(MAX_LINGERING, DISCARD_BYTES_PER_SECOND)
    }
}

impl Lingering {
    /// `max_lingering` places sharing `bytes_per_second` of discarding.
    pub(super) fn new(max_lingering: usize, bytes_per_second: u64) -> Self {
        Self {
            lingering: AtomicUsize::new(0),
            max_lingering,
            budget: DiscardBudget::new(bytes_per_second),
        }
    }

    /// A place to linger in, if one is free.
    pub(super) fn try_place(self: &Arc<Self>) -> Option<LingerPlace> {
        self.lingering
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_lingering).then_some(n + 1)
            })
            .ok()
            .map(|_| LingerPlace(Arc::clone(self)))
    }
}

/// One of a listener's lingering places, given back on drop.
pub(super) struct LingerPlace(Arc<Lingering>);

impl LingerPlace {
    /// Closes `socket` lingering ([`linger`] with [`LINGER_TIME`],
    /// [`LINGER_MAX_BYTES`] and the listener's budget), then frees the place.
    pub(super) async fn close(self, socket: TcpStream) -> LingerEnd {
        linger(socket, LINGER_TIME, LINGER_MAX_BYTES, &self.0.budget).await
    }
}

impl Drop for LingerPlace {
    fn drop(&mut self) {
        self.0.lingering.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How a lingering close ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LingerEnd {
    /// The client closed its side: a clean close.
    ClientClosed,
    /// [`LINGER_TIME`] passed first.
    TimedOut,
    /// [`LINGER_MAX_BYTES`] were discarded first.
    TooMuchData,
    /// The shared discard budget ran out first.
    OverBudget,
    /// The socket failed (the client reset it).
    Failed,
}

/// Half-closes `socket`, then discards what the client sends until it
/// closes, or `time` passes, or `max_bytes` have been read, or `budget`
/// has no more; the socket is closed when this returns.
pub(super) async fn linger(
    mut socket: TcpStream,
    time: Duration,
    max_bytes: usize,
    budget: &DiscardBudget,
) -> LingerEnd {
    if socket.shutdown().await.is_err() {
        return LingerEnd::Failed;
    }
    let deadline = tokio::time::Instant::now() + time;
    let mut scratch = vec![0u8; 16 * 1024];
    let mut discarded = 0usize;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut scratch)).await {
            Err(_) => return LingerEnd::TimedOut,
            Ok(Err(_)) => return LingerEnd::Failed,
            Ok(Ok(0)) => return LingerEnd::ClientClosed,
            Ok(Ok(n)) => {
                if !budget.try_spend(n as u64, std::time::Instant::now()) {
                    return LingerEnd::OverBudget;
                }
                discarded += n;
                if discarded >= max_bytes {
                    return LingerEnd::TooMuchData;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::test_support::tcp_pair;

    static BUDGET: std::sync::LazyLock<DiscardBudget> =
        std::sync::LazyLock::new(|| DiscardBudget::new(1 << 30));

    #[test]
    fn the_discard_budget_refills_with_time_up_to_its_rate() {
        let budget = DiscardBudget::new(1000);
        let start = std::time::Instant::now();
        assert!(budget.try_spend(600, start));
        assert!(!budget.try_spend(600, start), "only 400 left");
        assert!(budget.try_spend(400, start));
        let later = start + Duration::from_millis(500);
        assert!(budget.try_spend(500, later), "refilled by half a second");
        assert!(!budget.try_spend(1, later));
        let much_later = later + Duration::from_secs(60);
        assert!(
            !budget.try_spend(1001, much_later),
            "never more than the rate"
        );
        assert!(budget.try_spend(1000, much_later));
    }

    #[tokio::test]
    async fn a_lingering_close_stops_when_the_budget_runs_out() {
        let (mut client, server) = tcp_pair().await;
        let small = DiscardBudget::new(16 * 1024);
        let flood =
            tokio::spawn(async move { while client.write_all(&[b'x'; 4096]).await.is_ok() {} });
        let end = linger(server, Duration::from_secs(10), 1 << 30, &small).await;
        assert_eq!(end, LingerEnd::OverBudget);
        flood.await.expect("the flood ends when the socket closes");
    }

    #[tokio::test]
    async fn the_client_sees_end_of_stream_at_once_and_may_keep_sending() {
        let (mut client, server) = tcp_pair().await;
        let lingering = tokio::spawn(linger(server, Duration::from_secs(10), 1 << 20, &BUDGET));
        let mut buf = [0u8; 16];
        assert_eq!(client.read(&mut buf).await.expect("read"), 0, "FIN");
        // Writes still succeed: the server reads and discards them.
        for _ in 0..8 {
            client.write_all(&[b'x'; 4096]).await.expect("write");
        }
        drop(client);
        assert_eq!(lingering.await.expect("task"), LingerEnd::ClientClosed);
    }

    #[test]
    fn lingering_places_are_limited_and_given_back() {
        let lingering = Arc::new(Lingering::default());
        let taken: Vec<_> = std::iter::from_fn(|| lingering.try_place())
            .take(MAX_LINGERING + 1)
            .collect();
        assert_eq!(taken.len(), MAX_LINGERING);
        assert!(lingering.try_place().is_none());
        drop(taken);
        assert!(lingering.try_place().is_some());
    }

    #[tokio::test]
    async fn a_client_that_never_closes_is_cut_off_by_time() {
        let (_client, server) = tcp_pair().await;
        let end = linger(server, Duration::from_millis(100), 1 << 20, &BUDGET).await;
        assert_eq!(end, LingerEnd::TimedOut);
    }

    #[tokio::test]
    async fn a_client_that_keeps_sending_is_cut_off_by_bytes() {
        let (mut client, server) = tcp_pair().await;
        let lingering = tokio::spawn(linger(server, Duration::from_secs(10), 64 * 1024, &BUDGET));
        let flood =
            tokio::spawn(async move { while client.write_all(&[b'x'; 4096]).await.is_ok() {} });
        assert_eq!(lingering.await.expect("task"), LingerEnd::TooMuchData);
        flood.await.expect("the flood ends when the socket closes");
    }
}
