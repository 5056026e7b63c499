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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The longest a closed connection keeps reading the client.
pub(super) const LINGER_TIME: Duration = Duration::from_secs(2);

/// The most a closed connection reads and discards.
pub(super) const LINGER_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The most connections lingering at once; past it, connections close at
/// once (a flood of refused uploads cannot buy itself 2 s of reading each).
pub(super) const MAX_LINGERING: usize = 256;

static LINGERING: AtomicUsize = AtomicUsize::new(0);

/// One of the [`MAX_LINGERING`] places, given back on drop.
pub(super) struct LingerSlot(());

impl LingerSlot {
    /// A place to linger in, if one is free.
    pub(super) fn try_take() -> Option<Self> {
        LINGERING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_LINGERING).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(()))
    }
}

impl Drop for LingerSlot {
    fn drop(&mut self) {
        LINGERING.fetch_sub(1, Ordering::AcqRel);
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
    /// The socket failed (the client reset it).
    Failed,
}

/// Half-closes `socket`, then discards what the client sends until it
/// closes, or `time` passes, or `max_bytes` have been read; the socket is
/// closed when this returns.
pub(super) async fn linger(mut socket: TcpStream, time: Duration, max_bytes: usize) -> LingerEnd {
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

    #[tokio::test]
    async fn the_client_sees_end_of_stream_at_once_and_may_keep_sending() {
        let (mut client, server) = tcp_pair().await;
        let lingering = tokio::spawn(linger(server, Duration::from_secs(10), 1 << 20));
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
        // No other unit test serves connections, so every place is free.
        let taken: Vec<_> = std::iter::from_fn(LingerSlot::try_take)
            .take(MAX_LINGERING + 1)
            .collect();
        assert_eq!(taken.len(), MAX_LINGERING);
        assert!(LingerSlot::try_take().is_none());
        drop(taken);
        assert!(LingerSlot::try_take().is_some());
    }

    #[tokio::test]
    async fn a_client_that_never_closes_is_cut_off_by_time() {
        let (_client, server) = tcp_pair().await;
        let end = linger(server, Duration::from_millis(100), 1 << 20).await;
        assert_eq!(end, LingerEnd::TimedOut);
    }

    #[tokio::test]
    async fn a_client_that_keeps_sending_is_cut_off_by_bytes() {
        let (mut client, server) = tcp_pair().await;
        let lingering = tokio::spawn(linger(server, Duration::from_secs(10), 64 * 1024));
        let flood =
            tokio::spawn(async move { while client.write_all(&[b'x'; 4096]).await.is_ok() {} });
        assert_eq!(lingering.await.expect("task"), LingerEnd::TooMuchData);
        flood.await.expect("the flood ends when the socket closes");
    }
}
