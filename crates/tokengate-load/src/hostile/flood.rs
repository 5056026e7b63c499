//! The connection flood: many TCP connections opened at once and held
//! without sending anything, each opened again (after a short pause) when
//! the server ends it. The outcomes tell a refusal at once (a connection
//! limit) from a close later (an idle timeout).

use std::sync::Arc;
use std::time::Duration;

use super::config::Kind;
use super::raw_conn::send_and_watch;
use super::reply::End;
use super::run::{Ctx, pause};
use super::tally::Tallies;

/// A connection the server closes this soon after it was opened counts as
/// refused at once (the connection limit), not closed for idling.
const AT_ONCE: Duration = Duration::from_millis(500);

pub(super) async fn flood_slot(ctx: Arc<Ctx>) -> Tallies {
    let mut tallies = Tallies::default();
    while ctx.running() {
        let ending = send_and_watch(ctx.dial, Vec::new(), ctx.give_up, false).await;
        let key = match ending.end {
            End::Closed | End::Reset if ending.after < AT_ONCE => "closed at once (< 500 ms)",
            End::Closed | End::Reset => "closed later (>= 500 ms)",
            End::ConnectFailed => "connect failed",
            End::StillOpen | End::Answered => "held open to the end",
        };
        let tally = tallies.of(Kind::Connections, "hold-silent");
        tally.attempts += 1;
        tally.add(key, 1);
        if ending.server_ended() {
            tally.record_close(ending.after);
        }
        // A refused connection is re-opened after a short pause, not in a spin.
        if ending.end != End::StillOpen {
            pause(&ctx, Duration::from_millis(100)).await;
        }
    }
    tallies
}
