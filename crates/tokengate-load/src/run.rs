//! The load run itself: resolve the target, open the connections (and the
//! idle ones), let every in-flight slot call in a loop, paced or as fast as
//! answers come, through warm-up and the measured window, then merge the
//! slots' statistics into the [`Report`]. A refresh chain reads the `ttl`
//! of each refresh token ([`jwt_ttl`]) to know when to issue anew.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::time::Instant;

use crate::config::{LoadConfig, Scenario};
use crate::conn::{ConnTasks, Lane, TRANSPORT_BACKOFF};
use crate::error::LoadError;
use crate::protocol::HttpVersion;
use crate::report::{OpStats, Report, ServerMemory};
use crate::target::{Dial, Target};
use crate::wire::{CALL_KINDS, Call, Failure, Wire};

#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    end: Instant,
}

/// Runs the load: opens the connections, calls for warm-up + duration, and
/// returns the report of the measured window. Stops by itself; calls still
/// in flight at the end are abandoned and not recorded.
pub async fn run(cfg: &LoadConfig) -> Result<Report, LoadError> {
    cfg.validate()?;
    let target = Target::resolve(&cfg.target, cfg.allow_remote).await?;
    let version = cfg.http_version();
    let wire = Arc::new(Wire::new(
        cfg.protocol,
        version,
        &target.authority,
        &target.prefix,
        &cfg.payload,
    )?);
    let tasks = ConnTasks::default();
    let result = run_with(cfg, &target, version, wire, &tasks).await;
    tasks.abort_all();
    result
}

async fn run_with(
    cfg: &LoadConfig,
    target: &Target,
    version: HttpVersion,
    wire: Arc<Wire>,
    tasks: &ConnTasks,
) -> Result<Report, LoadError> {
    let idle = open_idle_connections(cfg, target, version, &wire, tasks).await?;
    let mut lanes = Vec::with_capacity(cfg.connections * cfg.in_flight);
    for _ in 0..cfg.connections {
        let worker = Lane::open_worker(Dial::to(target.addr), version, cfg.in_flight, tasks)
            .await
            .map_err(|f| LoadError::Connect {
                target: cfg.target.clone(),
                message: f.message,
            })?;
        lanes.extend(worker);
    }
    let start = Instant::now();
    let window = Window {
        measure_from: start + cfg.warmup,
        end: start + cfg.warmup + cfg.duration,
    };
    // Each slot starts a call every `slots / rate` seconds.
    let pace = cfg
        .rate
        .map(|rate| Duration::from_secs_f64(lanes.len() as f64 / rate));
    let mut handles = Vec::with_capacity(lanes.len());
    for lane in lanes {
        handles.push(tokio::spawn(slot(
            lane,
            wire.clone(),
            cfg.scenario,
            window,
            cfg.call_timeout,
            pace,
        )));
    }
    let mut total: [OpStats; CALL_KINDS] = Default::default();
    // Every slot stops at `end`; the margin only guards against a stuck task.
    let hard_stop = window.end + Duration::from_secs(5);
    for h in handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(hard_stop, h).await {
            Ok(Ok(stats)) => {
                for (t, s) in total.iter_mut().zip(stats.iter()) {
                    t.merge(s);
                }
            }
            Ok(Err(e)) => return Err(LoadError::Worker(e.to_string())),
            Err(_) => {
                abort.abort();
                return Err(LoadError::Worker("a call slot did not stop in time".into()));
            }
        }
    }
    let server_memory = cfg.server_pid.and_then(ServerMemory::read);
    drop(idle);
    let calls = cfg
        .scenario
        .calls()
        .iter()
        .map(|c| total[c.index()].report(c.name(), cfg.duration))
        .collect();
    Ok(Report {
        scenario: cfg.scenario.name().into(),
        protocol: cfg.protocol.name().into(),
        http: version.name().into(),
        target: cfg.target.clone(),
        connections: cfg.connections,
        in_flight: cfg.in_flight,
        tcp_connections: cfg.tcp_connections(),
        duration_s: cfg.duration.as_secs_f64(),
        warmup_s: cfg.warmup.as_secs_f64(),
        idle_connections: cfg.idle_connections,
        server_memory,
        calls,
    })
}

/// Opens `cfg.idle_connections` connections, makes one get_public_key call
/// on each (so the server has set the connection up fully) and returns
/// them, to be held until the run ends.
async fn open_idle_connections(
    cfg: &LoadConfig,
    target: &Target,
    version: HttpVersion,
    wire: &Wire,
    tasks: &ConnTasks,
) -> Result<Vec<Lane>, LoadError> {
    let mut idle = Vec::with_capacity(cfg.idle_connections);
    for n in 0..cfg.idle_connections {
        let failed = |message: String| LoadError::Connect {
            target: cfg.target.clone(),
            message: format!("idle connection {}: {message}", n + 1),
        };
        let mut lanes = Lane::open_worker(Dial::to(target.addr), version, 1, tasks)
            .await
            .map_err(|f| failed(f.message))?;
        let mut lane = lanes.pop().ok_or_else(|| failed("no lane".into()))?;
        let request = wire
            .request(Call::GetPublicKey, None)
            .map_err(|f| failed(f.message))?;
        let answer = lane.send(request).await.map_err(|f| failed(f.message))?;
        wire.judge(
            Call::GetPublicKey,
            answer.status,
            &answer.headers,
            answer.body,
            answer.trailers.as_ref(),
        )
        .map_err(|f| failed(f.message))?;
        idle.push(lane);
    }
    Ok(idle)
}

/// One in-flight slot: calls one after the other until the window ends.
async fn slot(
    mut lane: Lane,
    wire: Arc<Wire>,
    scenario: Scenario,
    window: Window,
    call_timeout: Duration,
    pace: Option<Duration>,
) -> [OpStats; CALL_KINDS] {
    let mut stats: [OpStats; CALL_KINDS] = Default::default();
    let mut chain: Option<String> = None;
    let mut next_start = Instant::now();
    loop {
        if let Some(pace) = pace {
            // Paced: wait for this slot's turn; a late call starts at once
            // and the schedule moves on from it (no catch-up burst).
            tokio::time::sleep_until(next_start.min(window.end)).await;
            let now = Instant::now();
            if next_start + pace < now {
                next_start = now;
            }
            next_start += pace;
        }
        let started = Instant::now();
        if started >= window.end {
            break;
        }
        let (call, token) = match scenario {
            Scenario::GetPublicKey => (Call::GetPublicKey, None),
            Scenario::Issue => (Call::Issue, None),
            Scenario::Healthz => (Call::Healthz, None),
            Scenario::RefreshChain => match chain.take() {
                Some(t) => (Call::Refresh, Some(t)),
                None => (Call::Issue, None),
            },
        };
        let deadline = (started + call_timeout).min(window.end);
        let attempt = async {
            let req = wire.request(call, token.as_deref())?;
            let r = lane.send(req).await?;
            wire.judge(call, r.status, &r.headers, r.body, r.trailers.as_ref())
        };
        let result = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(r) => r,
            // The run is over: the call is abandoned, not recorded.
            Err(_) if deadline >= window.end => break,
            Err(_) => Err(Failure::new(
                "TIMEOUT",
                format!("no answer within {:?}", call_timeout),
            )),
        };
        let latency = started.elapsed();
        let result = match (scenario, result) {
            (Scenario::RefreshChain, Ok(answer)) => wire.refresh_token(&answer).map(|t| {
                // A token with no refresh left would only earn ERROR_REFRESH_COUNT: issue anew.
                if jwt_ttl(&t) != Some(0) {
                    chain = Some(t);
                }
            }),
            (_, r) => r.map(drop),
        };
        let backoff =
            matches!(&result, Err(f) if f.key.status == "TRANSPORT" || f.key.status == "CONNECT");
        if started >= window.measure_from {
            stats[call.index()].record(latency, result.as_ref().map(|_| ()));
        }
        if backoff {
            tokio::time::sleep_until((Instant::now() + TRANSPORT_BACKOFF).min(window.end)).await;
        }
    }
    stats
}

/// The `ttl` claim (refreshes left) of a refresh JWT, read without
/// verification; `None` when it is not a JWT or has no `ttl`.
pub fn jwt_ttl(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<serde_json::Value>(&json)
        .ok()?
        .get("ttl")?
        .as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_of_a_jwt() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"cat":"REFRESH_TOKEN","ttl":0}"#);
        assert_eq!(jwt_ttl(&format!("e30.{payload}.sig")), Some(0));
        let payload = URL_SAFE_NO_PAD.encode(br#"{"ttl":17}"#);
        assert_eq!(jwt_ttl(&format!("e30.{payload}.sig")), Some(17));
        assert_eq!(jwt_ttl("not a jwt"), None);
        assert_eq!(jwt_ttl("a.!!!.c"), None);
    }
}
