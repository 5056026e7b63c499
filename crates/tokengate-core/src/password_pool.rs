//! Password checks run on their own threads, a bounded number at a time.
//!
//! bcrypt and argon2 are slow on purpose: each check burns a lot of CPU
//! time (BENCHMARKS.md has what it costs). Running them on the async
//! workers would stall every other call; running them unbounded would let
//! a login storm queue without limit. So: at most `workers` checks run, at
//! most `queue` wait, and beyond that the caller is told at once that the
//! server is busy.
//!
//! The checks run on dedicated threads at a lower scheduling priority
//! (Linux nice +10) rather than on tokio's shared blocking pool: during a
//! login storm they use every spare cycle, but when a thread serving
//! connections becomes runnable the kernel runs it first, so health
//! checks, key lookups and refreshes keep their latency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokengate_directory::PasswordHash;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// The pool is full: answer RESOURCE_EXHAUSTED instead of piling up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password pool is full")]
pub struct PoolBusy;

/// Niceness of the password threads: 10 gives them about a tenth of the
/// weight of a normal thread when both want the CPU.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const PASSWORD_THREAD_NICE: i32 = 10;

/// One check handed to a password thread.
struct Job {
    hash: PasswordHash,
    password: String,
    answer: oneshot::Sender<bool>,
    /// Held until the check ends, even when the caller has gone away, so
    /// the number of running checks never exceeds `workers`.
    _permit: OwnedSemaphorePermit,
}

/// Bounded password verification.
#[derive(Debug)]
pub struct PasswordPool {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hash or the password.
        f.write_str("Job")
    }
}

impl PasswordPool {
    /// `workers` concurrent checks (0 = number of CPUs), `queue` waiting.
    /// Starts the `workers` threads; they end when the pool is dropped.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = if workers == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            workers
        };
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..workers {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("tokengate-password-{n}"))
                .spawn(move || password_thread(&receiver));
            if let Err(e) = spawned {
                // The semaphore still admits `workers` checks; the threads
                // that did start serve them all, only more slowly.
                tracing::error!(error = %e, "cannot start a password thread");
            }
        }
        Self {
            running: Arc::new(Semaphore::new(workers)),
            waiting: AtomicUsize::new(0),
            max_waiting: queue,
            jobs: Mutex::new(sender),
        }
    }

    /// Checks that are waiting for a worker now (the
    /// `tokengate_password_queue_depth` gauge reports it to operators).
    #[cfg(test)]
    fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Verifies `password` against `hash` on a password thread.
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
        let (answer, outcome) = oneshot::channel();
        let job = Job {
            hash,
            password,
            answer,
            _permit: permit,
        };
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.send(job).is_ok(),
            Err(_) => false,
        };
        if !sent {
            // No thread left to run it: fail closed, as busy.
            return Err(PoolBusy);
        }
        // A thread that panicked inside a hash library drops the sender:
        // that counts as a failed check.
        Ok(outcome.await.unwrap_or(false))
    }
}

/// A password thread: lowers its own priority, then runs checks until the
/// pool is dropped.
fn password_thread(jobs: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        // The lock is held only while taking one job, not while hashing.
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let Job {
            hash,
            password,
            answer,
            _permit,
        } = job;
        let matched = std::panic::catch_unwind(move || hash.verify(&password));
        match matched {
            Ok(matched) => {
                let _ = answer.send(matched);
            }
            Err(_) => {
                tracing::error!("a password check panicked; counted as a failed check");
                drop(answer);
            }
        }
    }
}

/// Nice +10 for the calling thread (Linux keeps a niceness per thread).
/// Lowering one's own priority needs no privilege; if it fails anyway the
/// thread runs at normal priority, which is still correct.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: plain syscall wrappers with no pointers; gettid always
    // succeeds and setpriority only reads its integer arguments.
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, PASSWORD_THREAD_NICE)
    };
    if result != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the password threads' priority"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

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

    /// Niceness of this process's threads whose name starts with `prefix`
    /// (`/proc/self/task/*/stat`, field 19).
    #[cfg(target_os = "linux")]
    fn niceness_of_threads(prefix: &str) -> Vec<i32> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").expect("tasks") {
            let path = task.expect("task").path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if !comm.starts_with(prefix) {
                continue;
            }
            let stat = std::fs::read_to_string(path.join("stat")).expect("stat");
            // Fields after the `(comm)` part, which may hold spaces.
            let after = &stat[stat.rfind(')').expect("comm end") + 2..];
            let nice = after.split(' ').nth(16).expect("nice field");
            found.push(nice.parse().expect("nice is a number"));
        }
        found
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn checks_run_on_low_priority_threads_of_their_own() {
        let hash = PasswordHash::parse(&hash_bcrypt("pw", 4).expect("hash")).expect("parse");
        let pool = PasswordPool::new(3, 4);
        assert_eq!(pool.verify(hash, "pw".into()).await, Ok(true));
        // Thread names are cut to 15 bytes in `comm`. A thread takes its
        // name, then lowers its priority, once it runs, which may be after
        // the first check is done: wait (up to 5 s) for three at nice +10.
        wait_until(|| {
            niceness_of_threads("tokengate-passw")
                .iter()
                .filter(|&&n| n == PASSWORD_THREAD_NICE)
                .count()
                >= 3
        })
        .await;
    }
}
