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
                metrics::gauge!("tokengate_password_queue_depth").increment(1.0);
                // The slot is given back however the wait ends, including
                // when the caller goes away and this future is dropped.
                let _slot = QueueSlot(&self.waiting);
                Arc::clone(&self.running)
                    .acquire_owned()
                    .await
                    .map_err(|_| PoolBusy)?
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

/// One reserved place in the wait queue, released on drop.
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("tokengate_password_queue_depth").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokengate_directory::hash_bcrypt;

    use super::*;

    /// Polls `condition` for up to 5 s (the machine may be busy).
    async fn wait_until(condition: impl Fn() -> bool) {
        for _ in 0..500 {
            if condition() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bounded_queue_answers_busy_and_survives_cancelled_waiters() {
        // Cost 12: a check takes long enough for the queue to be observed.
        let hash = PasswordHash::parse(&hash_bcrypt("pw", 12).expect("hash")).expect("parse");
        let pool = Arc::new(PasswordPool::new(1, 2));
        // One running, two waiting: a fourth is refused at once.
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (pool, hash) = (Arc::clone(&pool), hash.clone());
                tokio::spawn(async move { pool.verify(hash, "pw".into()).await })
            })
            .collect();
        wait_until(|| pool.queue_depth() == 2).await;
        assert_eq!(pool.verify(hash.clone(), "pw".into()).await, Err(PoolBusy));
        // Callers that go away give their queue place back.
        for task in &tasks {
            task.abort();
        }
        wait_until(|| pool.queue_depth() == 0).await;
        assert_eq!(pool.verify(hash.clone(), "pw".into()).await, Ok(true));
        assert_eq!(pool.verify(hash, "nope".into()).await, Ok(false));
    }
}
