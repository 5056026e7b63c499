//! The watchdog every private server starts with: a `sh` that kills the
//! server and removes its folder once its stdin (a pipe from the test
//! process) closes, that is when the test process ends, however it ends.
//! Rust opens the pipe close-on-exec, so no other child holds it open. INT,
//! HUP and TERM are ignored: a Ctrl-C or a CI timeout signals the whole
//! process group, and the watchdog must outlive the test process to clean
//! up after it.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts the watchdog of the server `pid` with folder `dir`; `name` (e.g.
/// `redis-server`) names it in process listings.
pub(crate) fn spawn_watchdog(name: &str, pid: u32, dir: &Path) -> Child {
    let script = r#"trap '' INT HUP TERM; read _; kill -9 "$1" 2>/dev/null; rm -rf "$2""#;
    Command::new("sh")
        .args(["-c", script, &format!("{name}-watchdog")])
        .arg(pid.to_string())
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn the {name} watchdog (sh): {e}"))
}
