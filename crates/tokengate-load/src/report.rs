//! Per-worker statistics (no sharing while running) merged into the report.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::wire::{ErrorKey, Failure};

/// Highest latency the histograms track exactly (60 s, in µs); above is clamped.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Counts and latencies of one kind of call, kept by one worker.
#[derive(Debug, Clone)]
pub struct OpStats {
    hist: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<ErrorKey, (u64, String)>,
}

impl Default for OpStats {
    fn default() -> Self {
        Self::new()
    }
}

impl OpStats {
    /// Empty statistics (microsecond resolution, 3 significant digits).
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("1 µs .. 60 s at 3 significant figures is a valid histogram");
        Self {
            hist,
            ok: 0,
            errors: BTreeMap::new(),
        }
    }

    /// Records one completed call.
    pub fn record(&mut self, latency: Duration, outcome: Result<(), &Failure>) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        // Clamped into the histogram's range, so recording cannot fail.
        let _ = self.hist.record(us);
        match outcome {
            Ok(()) => self.ok += 1,
            Err(f) => {
                let entry = self
                    .errors
                    .entry(f.key.clone())
                    .or_insert((0, String::new()));
                entry.0 += 1;
                if entry.1.is_empty() {
                    entry.1 = f.message.chars().take(200).collect();
                }
            }
        }
    }

    /// Adds another worker's statistics.
    pub fn merge(&mut self, other: &OpStats) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.ok += other.ok;
        for (k, (n, sample)) in &other.errors {
            let entry = self.errors.entry(k.clone()).or_insert((0, sample.clone()));
            entry.0 += n;
        }
    }

    /// The report of these statistics over `measured`.
    pub fn report(&self, name: &str, measured: Duration) -> OpReport {
        let calls = self.hist.len();
        let secs = measured.as_secs_f64().max(1e-9);
        let q = |q: f64| {
            if calls == 0 {
                0.0
            } else {
                self.hist.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let mut errors: Vec<ErrorCount> = self
            .errors
            .iter()
            .map(|(k, (n, sample))| ErrorCount {
                status: k.status.clone(),
                code: k.code.clone(),
                count: *n,
                sample: sample.clone(),
            })
            .collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.count));
        OpReport {
            call: name.to_owned(),
            calls,
            ok: self.ok,
            errors_total: calls - self.ok,
            rps: calls as f64 / secs,
            ok_rps: self.ok as f64 / secs,
            latency_ms: Latency {
                mean: if calls == 0 {
                    0.0
                } else {
                    self.hist.mean() / 1000.0
                },
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                p999: q(0.999),
                max: if calls == 0 {
                    0.0
                } else {
                    self.hist.max() as f64 / 1000.0
                },
            },
            errors,
        }
    }
}

/// Latency figures in milliseconds (from microsecond samples).
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest call.
    pub max: f64,
}

/// How often one error class occurred.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorCount {
    /// gRPC code name, `HTTP <status>`, `TRANSPORT`, `CONNECT`, `TIMEOUT`, `BAD_RESPONSE`.
    pub status: String,
    /// The SpaceONE error code, when the message carried one.
    pub code: Option<String>,
    /// Number of calls that failed so.
    pub count: u64,
    /// The first message seen for this class.
    pub sample: String,
}

/// The results of one kind of call.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    /// `get_public_key`, `issue` or `refresh`.
    pub call: String,
    /// Calls completed in the measured window (successes and failures).
    pub calls: u64,
    /// Successful calls (grpc-status 0, or HTTP 200 for REST).
    pub ok: u64,
    /// Failed calls.
    pub errors_total: u64,
    /// Completed calls per second.
    pub rps: f64,
    /// Successful calls per second.
    pub ok_rps: f64,
    /// Latency of every completed call (successes and failures).
    pub latency_ms: Latency,
    /// Failures by class, most frequent first.
    pub errors: Vec<ErrorCount>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario run.
    pub scenario: String,
    /// The protocol spoken.
    pub protocol: String,
    /// `1.1` or `2`.
    pub http: String,
    /// The target URL.
    pub target: String,
    /// Workers (`--connections`).
    pub connections: usize,
    /// Calls in flight per worker (`--in-flight`).
    pub in_flight: usize,
    /// TCP connections opened at start (N for HTTP/2, N×M for HTTP/1.1).
    pub tcp_connections: usize,
    /// The measured window, seconds.
    pub duration_s: f64,
    /// The unrecorded warm-up, seconds.
    pub warmup_s: f64,
    /// Extra connections held open and idle during the run.
    pub idle_connections: usize,
    /// The server's memory at the end of the window, when `--server-pid`.
    pub server_memory: Option<ServerMemory>,
    /// One entry per kind of call (refresh-chain: `issue` and `refresh`).
    pub calls: Vec<OpReport>,
}

/// A server's memory, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerMemory {
    /// Resident set size now, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size, KiB (`VmHWM`).
    pub peak_rss_kib: u64,
}

impl ServerMemory {
    /// Reads the memory of process `pid`; `None` when it cannot be read
    /// (not Linux, no such process).
    pub fn read(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Self::parse(&status)
    }

    fn parse(status: &str) -> Option<Self> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        Some(Self {
            rss_kib: field("VmRSS:")?,
            peak_rss_kib: field("VmHWM:")?,
        })
    }
}

impl Report {
    /// The entry of one call kind.
    pub fn op(&self, call: &str) -> Option<&OpReport> {
        self.calls.iter().find(|o| o.call == call)
    }

    /// Failed calls over every kind.
    pub fn errors_total(&self) -> u64 {
        self.calls.iter().map(|o| o.errors_total).sum()
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {} | protocol {} over HTTP/{} | {} | {} connection(s) x {} in flight ({} TCP) | {:.1} s measured after {:.1} s warm-up",
            self.scenario,
            self.protocol,
            self.http,
            self.target,
            self.connections,
            self.in_flight,
            self.tcp_connections,
            self.duration_s,
            self.warmup_s
        )?;
        if self.idle_connections > 0 {
            writeln!(f, "{} idle connection(s) held open", self.idle_connections)?;
        }
        if let Some(m) = self.server_memory {
            writeln!(
                f,
                "server memory: RSS {:.1} MiB (peak {:.1} MiB)",
                m.rss_kib as f64 / 1024.0,
                m.peak_rss_kib as f64 / 1024.0
            )?;
        }
        for op in &self.calls {
            writeln!(
                f,
                "\n{:<15} calls {:>9}  ok {:>9}  errors {:>7}  rps {:>10.1}  (ok {:.1}/s)",
                op.call, op.calls, op.ok, op.errors_total, op.rps, op.ok_rps
            )?;
            let l = &op.latency_ms;
            writeln!(
                f,
                "  latency ms    p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
                l.p50, l.p90, l.p99, l.p999, l.max, l.mean
            )?;
            for e in &op.errors {
                let key = match &e.code {
                    Some(c) => format!("{} {}", e.status, c),
                    None => e.status.clone(),
                };
                writeln!(f, "  error {:>9} x {key}   e.g. {:?}", e.count, e.sample)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_memory_from_proc_status() {
        let status = "Name:\ttokengate\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        let m = ServerMemory::parse(status).expect("parsed");
        assert_eq!((m.rss_kib, m.peak_rss_kib), (40960, 51200));
        assert!(ServerMemory::parse("Name:\tx\n").is_none());
        let own = ServerMemory::read(std::process::id()).expect("this process");
        assert!(own.rss_kib > 0 && own.peak_rss_kib >= own.rss_kib);
    }

    #[test]
    fn merge_and_report() {
        let mut a = OpStats::new();
        let mut b = OpStats::new();
        for ms in 1..=100 {
            a.record(Duration::from_millis(ms), Ok(()));
        }
        let fail = Failure::new("UNAUTHENTICATED", "ERROR_AUTHENTICATION_FAILURE: no");
        b.record(Duration::from_millis(5), Err(&fail));
        b.record(Duration::from_millis(5), Err(&fail));
        a.merge(&b);
        let r = a.report("issue", Duration::from_secs(2));
        assert_eq!(r.calls, 102);
        assert_eq!(r.ok, 100);
        assert_eq!(r.errors_total, 2);
        assert!((r.rps - 51.0).abs() < 1e-9);
        assert!(
            (r.latency_ms.p50 - 49.0).abs() < 1.0,
            "{}",
            r.latency_ms.p50
        );
        assert!((r.latency_ms.max - 100.0).abs() < 0.1);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(
            r.errors[0].code.as_deref(),
            Some("ERROR_AUTHENTICATION_FAILURE")
        );
        assert_eq!(r.errors[0].count, 2);
    }
}
