//! Counting outcomes. Each attacker task keeps its own `Tallies` (per kind
//! and flavour: attempts, a count per outcome, how long until the server
//! ended the connection); the run merges them as the tasks finish, so no
//! counter is shared between tasks.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::config::Kind;
use super::reply::Ending;

/// Outcomes of one flavour of attack, kept by one task.
#[derive(Debug, Clone)]
pub(super) struct Tally {
    pub(super) attempts: u64,
    pub(super) outcomes: BTreeMap<String, u64>,
    pub(super) closed_after_ms: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            attempts: 0,
            outcomes: BTreeMap::new(),
            // 1 ms .. 1 h, 2 significant digits: constant and valid.
            closed_after_ms: Histogram::new_with_bounds(1, 3_600_000, 2)
                .expect("valid histogram bounds"),
        }
    }
}

impl Tally {
    pub(super) fn add(&mut self, key: impl Into<String>, n: u64) {
        *self.outcomes.entry(key.into()).or_default() += n;
    }

    pub(super) fn record(&mut self, ending: &Ending) {
        self.attempts += 1;
        self.add(ending.key(), 1);
        if ending.server_ended() {
            self.record_close(ending.after);
        }
    }

    pub(super) fn record_close(&mut self, after: Duration) {
        let ms = (after.as_millis() as u64).clamp(1, 3_600_000);
        // Clamped into the histogram's range: cannot fail.
        let _ = self.closed_after_ms.record(ms);
    }

    fn merge(&mut self, other: &Tally) {
        self.attempts += other.attempts;
        for (k, n) in &other.outcomes {
            self.add(k.clone(), *n);
        }
        let _ = self.closed_after_ms.add(&other.closed_after_ms);
    }
}

/// Tallies by (kind, flavour).
#[derive(Debug, Default)]
pub(super) struct Tallies(pub(super) BTreeMap<(Kind, &'static str), Tally>);

impl Tallies {
    pub(super) fn of(&mut self, kind: Kind, flavour: &'static str) -> &mut Tally {
        self.0.entry((kind, flavour)).or_default()
    }

    pub(super) fn merge(&mut self, other: Tallies) {
        for (key, tally) in other.0 {
            self.0.entry(key).or_default().merge(&tally);
        }
    }
}
