//! The client's TCP stream as hyper sees it, with what the connection
//! needs to know afterwards: whether the client ever sent a byte (a silent
//! connection is closed at the header read timeout), whether the client
//! closed its side, and — when hyper drops the stream while the client may
//! still be sending — the socket itself, handed back for a lingering close
//! (see `linger.rs`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// What the connection keeps of a [`ClientStream`] it gave to hyper.
pub(super) struct StreamWatch {
    spoke: Arc<AtomicBool>,
    handed_back: oneshot::Receiver<TcpStream>,
}

impl StreamWatch {
    /// Whether the client has sent at least one byte.
    pub(super) fn client_spoke(&self) -> bool {
        self.spoke.load(Ordering::Relaxed)
    }

    /// The socket, once hyper has dropped the stream, if the client had not
    /// closed its side by then (else there is nothing to linger for).
    pub(super) fn take_unfinished_socket(mut self) -> Option<TcpStream> {
        self.handed_back.try_recv().ok()
    }
}

/// A TCP stream that notes the client's first byte and end of stream, and
/// hands the socket back when dropped before the client closed.
pub(super) struct ClientStream {
    /// `None` only while being dropped.
    tcp: Option<TcpStream>,
    spoke: Arc<AtomicBool>,
    client_closed: bool,
    hand_back: Option<oneshot::Sender<TcpStream>>,
}

impl ClientStream {
    /// Wraps `tcp`; the watch tells the connection what happened on it.
    pub(super) fn new(tcp: TcpStream) -> (Self, StreamWatch) {
        let spoke = Arc::new(AtomicBool::new(false));
        let (hand_back, handed_back) = oneshot::channel();
        let stream = Self {
            tcp: Some(tcp),
            spoke: Arc::clone(&spoke),
            client_closed: false,
            hand_back: Some(hand_back),
        };
        (stream, StreamWatch { spoke, handed_back })
    }

    fn tcp(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.tcp
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

impl Drop for ClientStream {
    fn drop(&mut self) {
        if self.client_closed {
            return;
        }
        if let (Some(tcp), Some(hand_back)) = (self.tcp.take(), self.hand_back.take()) {
            // Nobody waiting (the connection was dropped by force): the
            // socket closes here, as it would have without us.
            let _ = hand_back.send(tcp);
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let remaining = buf.remaining();
        let polled = self.tcp()?.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if buf.filled().len() > before {
                self.spoke.store(true, Ordering::Relaxed);
            } else if remaining > 0 {
                // A read with room that returned nothing: end of stream.
                self.client_closed = true;
            }
        }
        polled
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.tcp()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.tcp()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.as_ref().is_some_and(|tcp| tcp.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp()?.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::test_support::tcp_pair;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_stream_dropped_while_the_client_is_open_hands_the_socket_back() {
        let (mut client, server) = tcp_pair().await;
        let (mut stream, watch) = ClientStream::new(server);
        assert!(!watch.client_spoke());
        client.write_all(b"hello").await.expect("write");
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await.expect("read");
        assert!(watch.client_spoke());
        drop(stream);
        let mut socket = watch.take_unfinished_socket().expect("handed back");
        // It is still the same open connection.
        socket.write_all(b"still here").await.expect("write");
        let mut answer = [0u8; 10];
        client.read_exact(&mut answer).await.expect("read");
        assert_eq!(&answer, b"still here");
    }

    #[tokio::test]
    async fn a_stream_the_client_closed_is_not_handed_back() {
        let (client, server) = tcp_pair().await;
        let (mut stream, watch) = ClientStream::new(server);
        drop(client);
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.expect("read to the end");
        drop(stream);
        assert!(!watch.client_spoke());
        assert!(watch.take_unfinished_socket().is_none());
    }
}
