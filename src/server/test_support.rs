//! What the server's unit tests share.

use tokio::net::{TcpListener, TcpStream};

/// Both ends of a fresh loopback TCP connection: (client, server).
pub(super) async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let client = TcpStream::connect(address).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (client, server)
}
