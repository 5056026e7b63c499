//! Ports and source addresses.
//!
//! A server that can bind port 0 and say which port it got must do so:
//! tokengate logs it ("serving gRPC, gRPC-Web and REST on one port",
//! `listen=…`) and prints it in its dev banner. A port picked here and bound
//! by another process later can be taken in between by another test's
//! server or client socket, so [`free_port`] is only for what cannot:
//! `redis-server` (port 0 turns its TCP listener off) and its cluster bus,
//! and a port a test needs before anything listens on it.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A port nothing listens on right now (on 127.0.0.1). Nothing stops
/// another process from taking it before the caller does: see the module
/// docs for when that is acceptable.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A blocking TCP connection to `to` from the local address `source` (on
/// Linux every 127.0.0.0/8 address is loopback: tests play a second client
/// machine from 127.0.0.2), with a 5 s read timeout.
pub fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let domain = if source.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .expect("bind the source address");
    socket.connect(&to.into()).expect("connect");
    let stream = TcpStream::from(socket);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream
}
