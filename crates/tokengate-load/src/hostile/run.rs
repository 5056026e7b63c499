//! The run loop: resolve the (loopback only) target, start every attacker
//! as a task of its own, sample the server's memory meanwhile, wait for all
//! of them to stop, and merge their tallies into the report. Also the
//! read-only state every attacker shares (`Ctx`).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use super::config::HostileConfig;
use super::error::HostileError;
use super::flood::flood_slot;
use super::garbage::{Rng, garbage_attacker};
use super::half_open::half_open_slot;
use super::oversized::oversized_attacker;
use super::report::{HostileReport, MemoryTrace, report_of};
use super::streams::streams_attacker;
use super::tally::Tallies;
use crate::report::ServerMemory;
use crate::target::{Dial, Target};

/// The shared, read-only state of the attackers.
#[derive(Debug)]
pub(super) struct Ctx {
    pub(super) cfg: HostileConfig,
    pub(super) dial: Dial,
    pub(super) authority: String,
    pub(super) prefix: String,
    /// No attack starts after this.
    end: Instant,
    /// Open connections are counted as still open after this.
    pub(super) give_up: Instant,
}

impl Ctx {
    pub(super) fn running(&self) -> bool {
        Instant::now() < self.end
    }

    pub(super) fn uri(&self, path: &str) -> String {
        format!("http://{}{}{}", self.authority, self.prefix, path)
    }
}

/// Runs the attacks for `duration`, waits up to `drain` for the connections
/// still open to be closed by the server, and returns what was seen.
pub async fn run(cfg: &HostileConfig) -> Result<HostileReport, HostileError> {
    cfg.validate()?;
    // Never anything but loopback: there is no --allow-remote here.
    let target = Target::resolve(&cfg.target, false).await?;
    let start = Instant::now();
    let ctx = Arc::new(Ctx {
        cfg: cfg.clone(),
        dial: Dial {
            addr: target.addr,
            source: cfg.source,
        },
        authority: target.authority,
        prefix: target.prefix,
        end: start + cfg.duration,
        give_up: start + cfg.duration + cfg.drain,
    });
    let memory = cfg
        .server_pid
        .map(|pid| tokio::spawn(sample_memory(pid, ctx.give_up)));
    let mut set = JoinSet::new();
    spawn_attackers(&ctx, &mut set);
    let mut tallies = Tallies::default();
    // Every task stops by `give_up` (plus a call timeout); the margin only
    // guards against a stuck one.
    let hard_stop = ctx.give_up + cfg.attempt_timeout + Duration::from_secs(5);
    loop {
        match timeout_at(hard_stop, set.join_next()).await {
            Ok(None) => break,
            Ok(Some(Ok(t))) => tallies.merge(t),
            Ok(Some(Err(e))) => return Err(HostileError::Attacker(e.to_string())),
            Err(_) => {
                set.abort_all();
                return Err(HostileError::Attacker(
                    "an attacker did not stop in time".into(),
                ));
            }
        }
    }
    let server_memory = match memory {
        Some(h) => h
            .await
            .map_err(|e| HostileError::Attacker(format!("memory sampler: {e}")))?,
        None => None,
    };
    Ok(HostileReport {
        target: cfg.target.clone(),
        duration_s: cfg.duration.as_secs_f64(),
        drain_s: cfg.drain.as_secs_f64(),
        attacks: report_of(tallies),
        server_memory,
    })
}

fn spawn_attackers(ctx: &Arc<Ctx>, set: &mut JoinSet<Tallies>) {
    let cfg = &ctx.cfg;
    for i in 0..cfg.garbage {
        set.spawn(garbage_attacker(ctx.clone(), Rng::new(cfg.seed, i as u64)));
    }
    for i in 0..cfg.half_open {
        let kind = cfg.half_open_kinds[i % cfg.half_open_kinds.len()];
        set.spawn(half_open_slot(ctx.clone(), kind));
    }
    for i in 0..cfg.oversized {
        set.spawn(oversized_attacker(ctx.clone(), i));
    }
    for i in 0..cfg.streams {
        set.spawn(streams_attacker(ctx.clone(), i));
    }
    for _ in 0..cfg.connections {
        set.spawn(flood_slot(ctx.clone()));
    }
}

async fn sample_memory(pid: u32, until: Instant) -> Option<MemoryTrace> {
    let start = ServerMemory::read(pid)?;
    let mut trace = MemoryTrace {
        samples: 1,
        start,
        max_rss_kib: start.rss_kib,
        end: start,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    while Instant::now() < until {
        tick.tick().await;
        let Some(m) = ServerMemory::read(pid) else {
            break;
        };
        trace.samples += 1;
        trace.max_rss_kib = trace.max_rss_kib.max(m.rss_kib);
        trace.end = m;
    }
    Some(trace)
}

/// Sleeps for `d`, but not past the end of the attacks.
pub(super) async fn pause(ctx: &Ctx, d: Duration) {
    tokio::time::sleep_until((Instant::now() + d).min(ctx.end)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LoadError;

    #[tokio::test]
    async fn remote_targets_are_refused() {
        let c = HostileConfig::new("http://10.0.0.1:50051");
        assert!(matches!(
            run(&c).await,
            Err(HostileError::Target(LoadError::RemoteTarget { .. }))
        ));
    }
}
