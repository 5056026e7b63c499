//! Unique names and the wall clock.
//!
//! Tests that share one store (a Redis server shared by a test binary, or
//! the same server across reruns) keep apart by naming everything with
//! [`unique`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch (Redis TTLs follow the wall clock, so the
/// tests' `now_ms` does too).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// A string no other test or run uses: `label`, the process id, a counter
/// and the clock's nanoseconds.
pub fn unique(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("{label}-{}-{n}-{nanos:x}", std::process::id())
}
