//! The lifecycle every private server shares: a child process and its
//! [watchdog](crate::watchdog), started from a caller-built [`Command`],
//! polled until ready, stopped (and restarted on the same port) on demand
//! and killed on drop. The server types keep what differs: the command
//! line, the readiness probe and the messages (which name the server and
//! carry its log).

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Why [`ManagedProcess::wait_ready`] gave up.
#[derive(Debug)]
pub(crate) enum NotReady {
    /// The process ended (a bad argument, a port already taken).
    Exited(ExitStatus),
    /// The probe never held before the deadline.
    TimedOut,
}

/// A child process and its watchdog; killed (watchdog first) on drop.
pub(crate) struct ManagedProcess {
    /// Names the watchdog in process listings (e.g. `redis-server`).
    name: &'static str,
    child: Option<Child>,
    /// Its stdin is the pipe whose end kills the child: see
    /// [`crate::watchdog`].
    watchdog: Option<Child>,
}

impl ManagedProcess {
    /// Nothing running yet; `name` names the watchdog.
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            child: None,
            watchdog: None,
        }
    }

    /// Spawns `command`, then the watchdog that kills it and removes `dir`
    /// if the test process ends first. Panics with `spawn <program>` if the
    /// program cannot be started.
    pub(crate) fn spawn(&mut self, command: &mut Command, dir: &Path) {
        // Never two children under one guard: the first one's watchdog
        // would outlive it and later remove `dir` under the second.
        self.stop();
        let child = command.spawn().unwrap_or_else(|e| {
            let program = Path::new(command.get_program());
            let program = program.file_name().unwrap_or(program.as_os_str());
            panic!("spawn {}: {e}", program.display())
        });
        self.watchdog = Some(crate::watchdog::spawn_watchdog(self.name, child.id(), dir));
        self.child = Some(child);
    }

    /// Polls `probe` every `poll` until it holds, for at most `within`.
    /// Stops early if the child exits; the guard is then empty again.
    pub(crate) fn wait_ready(
        &mut self,
        within: Duration,
        poll: Duration,
        mut probe: impl FnMut() -> bool,
    ) -> Result<(), NotReady> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                // Gone: its pid may be reused, so the watchdog must not
                // signal it any more.
                self.stop_watchdog();
                self.child = None;
                return Err(NotReady::Exited(status));
            }
            if probe() {
                return Ok(());
            }
            std::thread::sleep(poll);
        }
        Err(NotReady::TimedOut)
    }

    /// [`Self::spawn`], then [`Self::wait_ready`]; a process that is not
    /// ready is stopped, so the caller can retry on another port.
    pub(crate) fn start(
        &mut self,
        command: &mut Command,
        dir: &Path,
        within: Duration,
        poll: Duration,
        probe: impl FnMut() -> bool,
    ) -> Result<(), NotReady> {
        self.spawn(command, dir);
        let ready = self.wait_ready(within, poll, probe);
        if ready.is_err() {
            self.stop();
        }
        ready
    }

    /// Runs `start` (which calls [`Self::start`]) until it succeeds, for at
    /// most `within`, pausing `pause` between attempts: after a stop the
    /// old listening socket may linger a moment. Returns the last error
    /// once the time is up.
    pub(crate) fn restart(
        &mut self,
        within: Duration,
        pause: Duration,
        mut start: impl FnMut(&mut Self) -> Result<(), NotReady>,
    ) -> Result<(), NotReady> {
        self.stop();
        let deadline = Instant::now() + within;
        loop {
            match start(self) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => {
                    self.stop();
                    std::thread::sleep(pause);
                }
            }
        }
    }

    /// The child's pid; panics if it is not running.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// Sends `signal` (e.g. `-STOP`) with `kill`; whether `kill` succeeded.
    pub(crate) fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("run kill")
            .success()
    }

    /// Kills the child (SIGKILL) and waits until it is gone; the watchdog
    /// first, so that it never signals the pid once another process may
    /// have it. Nothing if nothing runs.
    pub(crate) fn stop(&mut self) {
        self.stop_watchdog();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (a shutdown the server handles, e.g. `-INT`) and
    /// waits up to `within` for the child to exit, then kills it.
    pub(crate) fn stop_with(&mut self, signal: &str, within: Duration) {
        self.stop_watchdog();
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            let deadline = Instant::now() + within;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
