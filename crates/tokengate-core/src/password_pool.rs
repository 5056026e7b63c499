//! Password checks run on blocking threads, a bounded number at a time.
//!
//! bcrypt and argon2 take tens to hundreds of milliseconds of CPU. Running
//! them on the async workers would stall every other call; running them
//! unbounded would let a login storm queue without limit. So: at most
//! `workers` checks run, at most `queue` wait, and beyond that the caller
//! is told at once that the server is busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokengate_directory::PasswordHash;
use tokio::sync::Semaphore;

/// The pool is full: answer RESOURCE_EXHAUSTED instead of piling up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password pool is full")]
pub struct PoolBusy;

/// Bounded password verification.
#[derive(Debug)]
pub struct PasswordPool {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl PasswordPool {
    /// `workers` concurrent checks (0 = number of CPUs), `queue` waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = if workers == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            workers
        };
        Self {
            running: Arc::new(Semaphore::new(workers)),
            waiting: AtomicUsize::new(0),
            max_waiting: queue,
        }
    }

    /// Checks that are waiting for a worker now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Verifies `password` against `hash` on a blocking thread.
    pub async fn verify(&self, hash: PasswordHash, password: String) -> Result<bool, PoolBusy> {
        let permit = match Arc::clone(&self.running).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Reserve a queue slot atomically: parallel callers cannot
                // all see room and overshoot the bound.
                let reserved =
                    self.waiting
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                            (w < self.max_waiting).then_some(w + 1)
                        });
                if reserved.is_err() {
                    return Err(PoolBusy);
                }
                let permit = Arc::clone(&self.running).acquire_owned().await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                permit.map_err(|_| PoolBusy)?
            }
        };
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash.verify(&password)
        })
        .await;
        // A panic inside a hash library counts as a failed check.
        Ok(outcome.unwrap_or(false))
    }
}
