//! Throttles client addresses that keep breaking the protocol.
//!
//! Every refusal of a broken request costs the server's core something: a
//! 300 KiB request head is read to the 32 KiB cap, scanned and answered
//! 431; an oversized upload is answered 413 and read on while the
//! connection lingers. One client looping on those on loopback took most
//! of the server's core and doubled everybody else's p99 (BENCHMARKS.md,
//! "Hostile traffic"). Honest clients do not
//! send such requests, let alone many in a row: so each address counts its
//! faults, and an address with `faults` within `window` is *throttled* for
//! `throttle_for` — its new connections beyond a trickle
//! (`connections_per_second`) are reset as soon as they are accepted, before
//! a byte is read. A throttled address that faults again stays throttled.
//!
//! Throttling new connections, rather than refusing every connection,
//! keeps a proxy in front usable: an ingress forwarding one client's
//! oversized uploads gets throttled, but its kept-alive connections go on
//! serving, and it can still open a few new ones per second.
//!
//! IPv6 addresses are counted per /64, the block one host usually owns.
//! Memory is bounded: at most [`MAX_SOURCES`] addresses are tracked; when
//! that many have faulted recently, further addresses are not counted
//! until the older ones expire (counting is a mitigation, never a gate).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::peer::{ClientFault, FaultSink};

/// Addresses tracked at most.
pub(crate) const MAX_SOURCES: usize = 16_384;

impl FaultSink for SourceGuard {
    fn report(&self, ip: IpAddr, fault: ClientFault) {
        SourceGuard::report(self, ip, fault);
    }
}

/// How faults are counted and throttled, from `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct SourceGuardSettings {
    /// Faults within `window` that throttle an address; 0 = never.
    pub faults: u32,
    /// The counting window.
    pub window: Duration,
    /// How long an address stays throttled after its last fault.
    pub throttle_for: Duration,
    /// New connections a throttled address may still open per second.
    pub connections_per_second: u32,
}

/// See the module docs. One per listener, shared by its connections.
#[derive(Debug)]
pub struct SourceGuard {
    settings: SourceGuardSettings,
    epoch: Instant,
    /// Until when (ms since `epoch`) some address may be throttled: past
    /// it, admission skips the lock (the common case by far).
    throttle_horizon_ms: AtomicU64,
    sources: Mutex<HashMap<SourceKey, Record>>,
}

/// An IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SourceKey(IpAddr);

impl SourceKey {
    fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                SourceKey(IpAddr::V6(prefix.into()))
            }
            v4 => SourceKey(v4),
        }
    }
}

#[derive(Debug)]
struct Record {
    faults: u32,
    window_started: Instant,
    throttled_until: Option<Instant>,
    /// Connections the throttled address may still open (a token bucket).
    allowance: f64,
    allowance_at: Instant,
}

impl Record {
    fn throttled_at(&self, now: Instant) -> bool {
        self.throttled_until.is_some_and(|until| now < until)
    }

    fn expired_at(&self, now: Instant, window: Duration) -> bool {
        !self.throttled_at(now) && now.saturating_duration_since(self.window_started) >= window
    }
}

impl SourceGuard {
    /// A guard with nothing counted yet.
    pub fn new(settings: SourceGuardSettings) -> Self {
        Self {
            settings,
            epoch: Instant::now(),
            throttle_horizon_ms: AtomicU64::new(0),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a connection just accepted from `ip` may be served.
    pub fn admit(&self, ip: IpAddr) -> bool {
        self.admit_at(ip, Instant::now())
    }

    /// Counts a fault against `ip`; throttles it when it has had too many.
    pub fn report(&self, ip: IpAddr, fault: ClientFault) {
        metrics::counter!("tokengate_client_faults_total", "fault" => fault.as_str()).increment(1);
        if self.report_at(ip, Instant::now()) {
            metrics::counter!("tokengate_sources_throttled_total").increment(1);
            // The address is the client's, not a secret; operators need it
            // to tell an attack from a misconfigured proxy.
            tracing::warn!(
                event = "source_throttled",
                source = %SourceKey::of(ip).0,
                last_fault = fault.as_str(),
                faults = self.settings.faults,
                window_s = self.settings.window.as_secs(),
                throttle_s = self.settings.throttle_for.as_secs(),
                "client address keeps breaking the protocol: its new connections are throttled"
            );
        }
    }

    fn admit_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.ms_since_epoch(now) >= self.throttle_horizon_ms.load(Ordering::Relaxed) {
            return true;
        }
        let mut sources = self.lock();
        let Some(record) = sources.get_mut(&SourceKey::of(ip)) else {
            return true;
        };
        if !record.throttled_at(now) {
            return true;
        }
        let rate = f64::from(self.settings.connections_per_second);
        let elapsed = now.saturating_duration_since(record.allowance_at);
        record.allowance = (record.allowance + elapsed.as_secs_f64() * rate).min(rate.max(1.0));
        record.allowance_at = now;
        if record.allowance >= 1.0 {
            record.allowance -= 1.0;
            true
        } else {
            false
        }
    }

    /// Counts a fault at `now`; true when it started a throttle.
    fn report_at(&self, ip: IpAddr, now: Instant) -> bool {
        let settings = self.settings;
        if settings.faults == 0 {
            return false;
        }
        let key = SourceKey::of(ip);
        let mut sources = self.lock();
        if !sources.contains_key(&key) && sources.len() >= MAX_SOURCES {
            sources.retain(|_, record| !record.expired_at(now, settings.window));
            if sources.len() >= MAX_SOURCES {
                return false;
            }
        }
        let record = sources.entry(key).or_insert(Record {
            faults: 0,
            window_started: now,
            throttled_until: None,
            allowance: 0.0,
            allowance_at: now,
        });
        if now.saturating_duration_since(record.window_started) >= settings.window {
            record.faults = 0;
            record.window_started = now;
        }
        record.faults = record.faults.saturating_add(1);
        let was_throttled = record.throttled_at(now);
        if !was_throttled && record.faults < settings.faults {
            return false;
        }
        if !was_throttled {
            // No burst for a fresh throttle: the trickle starts empty.
            record.allowance = 0.0;
            record.allowance_at = now;
        }
        let until = now + settings.throttle_for;
        record.throttled_until = Some(until);
        self.throttle_horizon_ms
            .fetch_max(self.ms_since_epoch(until), Ordering::Relaxed);
        !was_throttled
    }

    fn ms_since_epoch(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SourceKey, Record>> {
        // A poisoned lock only means a panic elsewhere mid-update: the
        // counts are still usable.
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(faults: u32) -> SourceGuard {
        SourceGuard::new(SourceGuardSettings {
            faults,
            window: Duration::from_secs(10),
            throttle_for: Duration::from_secs(60),
            connections_per_second: 2,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    /// Admissions of `ip` at `at`, `n` times in a row.
    fn admitted(guard: &SourceGuard, ip: IpAddr, at: Instant, n: usize) -> usize {
        (0..n).filter(|_| guard.admit_at(ip, at)).count()
    }

    #[test]
    fn faults_below_the_threshold_change_nothing() {
        let guard = guard(5);
        let now = Instant::now();
        for _ in 0..4 {
            assert!(!guard.report_at(ip("192.0.2.1"), now));
        }
        assert_eq!(admitted(&guard, ip("192.0.2.1"), now, 100), 100);
    }

    #[test]
    fn the_threshold_throttles_that_address_only() {
        let guard = guard(5);
        let now = Instant::now();
        let reports: Vec<bool> = (0..7)
            .map(|_| guard.report_at(ip("192.0.2.1"), now))
            .collect();
        // The fifth fault starts the throttle; later ones only extend it.
        assert_eq!(reports, [false, false, false, false, true, false, false]);
        assert_eq!(admitted(&guard, ip("192.0.2.1"), now, 100), 0);
        assert_eq!(admitted(&guard, ip("192.0.2.2"), now, 100), 100);
    }

    #[test]
    fn a_throttled_address_gets_a_trickle_of_connections() {
        let guard = guard(1);
        let start = Instant::now();
        guard.report_at(ip("192.0.2.1"), start);
        // 2 per second: 20 in 10 s, however many it tries.
        let admitted: usize = (1..=100)
            .map(|tenth| {
                let at = start + Duration::from_millis(100 * tenth);
                admitted(&guard, ip("192.0.2.1"), at, 50)
            })
            .sum();
        assert_eq!(admitted, 20);
    }

    #[test]
    fn the_throttle_ends_unless_the_faults_go_on() {
        let guard = guard(1);
        let start = Instant::now();
        guard.report_at(ip("192.0.2.1"), start);
        guard.report_at(ip("192.0.2.2"), start);
        // .2 faults again 50 s in: its throttle runs 60 s from then.
        guard.report_at(ip("192.0.2.2"), start + Duration::from_secs(50));
        let later = start + Duration::from_secs(61);
        assert_eq!(admitted(&guard, ip("192.0.2.1"), later, 10), 10);
        assert!(admitted(&guard, ip("192.0.2.2"), later, 10) <= 2);
        let much_later = start + Duration::from_secs(111);
        assert_eq!(admitted(&guard, ip("192.0.2.2"), much_later, 10), 10);
    }

    #[test]
    fn faults_spread_past_the_window_do_not_add_up() {
        let guard = guard(3);
        let start = Instant::now();
        for i in 0..10 {
            // Two faults per 10 s window: never three in one.
            let at = start + Duration::from_secs(10 * i);
            assert!(!guard.report_at(ip("192.0.2.1"), at));
            assert!(!guard.report_at(ip("192.0.2.1"), at + Duration::from_secs(1)));
        }
        assert_eq!(
            admitted(
                &guard,
                ip("192.0.2.1"),
                start + Duration::from_secs(100),
                10
            ),
            10
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let guard = guard(2);
        let now = Instant::now();
        guard.report_at(ip("2001:db8:1:2::1"), now);
        assert!(guard.report_at(ip("2001:db8:1:2:ffff::9"), now));
        assert_eq!(admitted(&guard, ip("2001:db8:1:2::77"), now, 5), 0);
        assert_eq!(admitted(&guard, ip("2001:db8:1:3::1"), now, 5), 5);

        guard.report_at(ip("::ffff:192.0.2.7"), now);
        assert!(guard.report_at(ip("192.0.2.7"), now));
    }

    #[test]
    fn zero_faults_means_off() {
        let guard = guard(0);
        let now = Instant::now();
        for _ in 0..1_000 {
            assert!(!guard.report_at(ip("192.0.2.1"), now));
        }
        assert_eq!(admitted(&guard, ip("192.0.2.1"), now, 10), 10);
    }

    #[test]
    fn tracking_is_bounded_and_expired_addresses_make_room() {
        let guard = guard(2);
        let start = Instant::now();
        let nth = |i: usize| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
        for i in 0..MAX_SOURCES {
            guard.report_at(nth(i), start);
        }
        // Full of recent faults: a new address is not counted.
        let newcomer = ip("192.0.2.1");
        guard.report_at(newcomer, start);
        assert!(!guard.report_at(newcomer, start));
        assert_eq!(guard.lock().len(), MAX_SOURCES);
        // Once their window has passed, they make room.
        let later = start + Duration::from_secs(11);
        guard.report_at(newcomer, later);
        assert!(guard.report_at(newcomer, later));
        assert_eq!(guard.lock().len(), 1);
    }
}
