//! The result of a hostile run: per kind and flavour of attack the outcome
//! counts and how long the server took to end connections
//! ([`AttackReport`]), and the server's memory over the run
//! ([`MemoryTrace`]); as JSON or as text ([`HostileReport`]). Built from
//! the merged tallies once every attacker has stopped.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::config::Kind;
use super::tally::Tallies;
use crate::report::ServerMemory;

/// Time from opening to the server ending the connection, ms.
#[derive(Debug, Clone, Serialize)]
pub struct CloseTimes {
    /// Connections the server closed or reset.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Longest.
    pub max: u64,
}

/// The outcomes of one flavour of one attack kind.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    /// `garbage`, `half-open`, `oversized`, `streams` or `connections`.
    pub kind: String,
    /// The flavour, e.g. `random-bytes`, `partial-headers`, `rapid-reset`.
    pub flavour: String,
    /// Connections (or, for the stream attacks, connections used).
    pub attempts: u64,
    /// Counts by outcome, e.g. `"HTTP 400, closed": 12`.
    pub outcomes: BTreeMap<String, u64>,
    /// How long the connections the server ended lasted.
    pub closed_after_ms: Option<CloseTimes>,
}

impl AttackReport {
    /// The count of outcomes whose key satisfies `pred`.
    pub fn count(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.outcomes
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The server's memory over the run.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryTrace {
    /// Samples taken (every 500 ms).
    pub samples: usize,
    /// Before the attacks started.
    pub start: ServerMemory,
    /// Highest `VmRSS` sampled, KiB.
    pub max_rss_kib: u64,
    /// At the end of the drain (`peak_rss_kib` is `VmHWM`, the peak since
    /// the server started).
    pub end: ServerMemory,
}

/// The whole hostile run.
#[derive(Debug, Clone, Serialize)]
pub struct HostileReport {
    /// The target URL.
    pub target: String,
    /// Attacks were started for this long, seconds.
    pub duration_s: f64,
    /// Then open connections were watched this long, seconds.
    pub drain_s: f64,
    /// One entry per (kind, flavour) that ran.
    pub attacks: Vec<AttackReport>,
    /// The server's memory, with `server_pid`.
    pub server_memory: Option<MemoryTrace>,
}

impl HostileReport {
    /// The entry of `kind`/`flavour`, if it ran.
    pub fn attack(&self, kind: Kind, flavour: &str) -> Option<&AttackReport> {
        self.attacks
            .iter()
            .find(|a| a.kind == kind.name() && a.flavour == flavour)
    }

    /// The entries of one kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &AttackReport> {
        self.attacks.iter().filter(move |a| a.kind == kind.name())
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl fmt::Display for HostileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "hostile mix | {} | attacks for {:.1} s, then {:.1} s for open connections to close",
            self.target, self.duration_s, self.drain_s
        )?;
        for a in &self.attacks {
            write!(f, "\n{}/{}  attempts {}", a.kind, a.flavour, a.attempts)?;
            if let Some(c) = &a.closed_after_ms {
                write!(
                    f,
                    "  closed by the server after ms: p50 {} p99 {} max {} ({} closed)",
                    c.p50, c.p99, c.max, c.count
                )?;
            }
            writeln!(f)?;
            for (outcome, n) in &a.outcomes {
                writeln!(f, "  {n:>9}  {outcome}")?;
            }
        }
        if let Some(m) = &self.server_memory {
            writeln!(
                f,
                "\nserver memory ({} samples): VmRSS start {:.1} MiB, max {:.1} MiB, end {:.1} MiB; VmHWM {:.1} MiB",
                m.samples,
                mib(m.start.rss_kib),
                mib(m.max_rss_kib),
                mib(m.end.rss_kib),
                mib(m.end.peak_rss_kib)
            )?;
        }
        Ok(())
    }
}

pub(super) fn report_of(tallies: Tallies) -> Vec<AttackReport> {
    tallies
        .0
        .into_iter()
        .map(|((kind, flavour), t)| {
            let h = &t.closed_after_ms;
            let closed_after_ms = (!h.is_empty()).then(|| CloseTimes {
                count: h.len(),
                p50: h.value_at_quantile(0.5),
                p99: h.value_at_quantile(0.99),
                max: h.max(),
            });
            AttackReport {
                kind: kind.name().into(),
                flavour: flavour.into(),
                attempts: t.attempts,
                outcomes: t.outcomes,
                closed_after_ms,
            }
        })
        .collect()
}
