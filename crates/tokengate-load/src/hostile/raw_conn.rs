//! Plain TCP connections to the target, from the configured source
//! address: connect, write a request's bytes while reading whatever the
//! server answers, and classify how the connection ended. The garbage,
//! half-open, flood and REST oversized attacks all go through
//! `send_and_watch`.

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::{Instant, timeout_at};

use super::reply::{End, Ending, Reply, classify, http1_status};
use crate::target::Dial;

/// The most of the server's answer kept for classification.
const KEEP_BYTES: usize = 64 * 1024;

pub(super) async fn connect(dial: Dial, until: Instant) -> Option<TcpStream> {
    match timeout_at(until, dial.connect()).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Some(s)
        }
        _ => None,
    }
}

/// Writes `chunks` while reading the server's answer, until the server ends
/// the connection, `until` passes, or (with `stop_at_answer`) an HTTP status
/// line arrives. The write half stays open the whole time: a half-close
/// would tell the server the request is over.
pub(super) async fn send_and_watch(
    dial: Dial,
    chunks: Vec<Bytes>,
    until: Instant,
    stop_at_answer: bool,
) -> Ending {
    let started = Instant::now();
    let Some(stream) = connect(dial, until).await else {
        return Ending {
            reply: Reply::Nothing,
            end: End::ConnectFailed,
            after: started.elapsed(),
        };
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = async {
        for chunk in &chunks {
            if wr.write_all(chunk).await.is_err() {
                break;
            }
        }
    };
    let reader = read_until_end(&mut rd, until, stop_at_answer);
    tokio::pin!(writer, reader);
    let mut written = false;
    let (kept, end) = loop {
        tokio::select! {
            () = &mut writer, if !written => written = true,
            r = &mut reader => break r,
        }
    };
    Ending {
        reply: classify(&kept),
        end,
        after: started.elapsed(),
    }
}

async fn read_until_end(
    rd: &mut OwnedReadHalf,
    until: Instant,
    stop_at_answer: bool,
) -> (Vec<u8>, End) {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match timeout_at(until, rd.read(&mut buf)).await {
            Err(_) => return (kept, End::StillOpen),
            Ok(Ok(0)) => return (kept, End::Closed),
            Ok(Ok(n)) => {
                let room = KEEP_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                if stop_at_answer && http1_status(&kept).is_some() {
                    return (kept, End::Answered);
                }
            }
            // ECONNRESET mostly; any read error ends the connection.
            Ok(Err(_)) => return (kept, End::Reset),
        }
    }
}
