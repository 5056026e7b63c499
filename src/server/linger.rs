//! Lingering close. When the server is done with a connection while the
//! client is still sending — typically an upload refused with 413 before
//! its body was read — closing the socket at once makes the kernel answer
//! the client's next segment with a reset, and an HTTP client busy writing
//! the body reports "broken pipe" instead of reading the 413 already in
//! its buffer. So: half-close (the client sees the end of our answers),
//! then read and discard what the client still sends until it closes too,
//! for a bounded time and number of bytes (nginx's `lingering_close`).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The longest a closed connection keeps reading the client.
pub(super) const LINGER_TIME: Duration = Duration::from_secs(2);

/// The most a closed connection reads and discards.
pub(super) const LINGER_MAX_BYTES: usize = 16 * 1024 * 1024;

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
