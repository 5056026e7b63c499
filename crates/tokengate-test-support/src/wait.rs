//! Waiting for something the server does in its own time (a change feed,
//! a health check), without a fixed sleep.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it holds and returns how long that
/// took; panics naming `what` after `limit`.
pub async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
