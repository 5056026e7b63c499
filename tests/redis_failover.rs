//! Failover chaos, through the real binary: tokengate on a Redis master
//! with two replicas behind three sentinels (`redis+sentinel://`), hundreds
//! of refresh chains running, and the master killed (SIGKILL) mid-load,
//! then the promoted one killed too. After each failover a second client
//! replays, for one third of the chains, the token each spent last before
//! the kill: a write the promoted replica never saw makes that token live
//! again, and this is what a thief holding a copy would try.
//!
//! What must hold, with `store.replica_acks` 0 and 1 alike: no token pair
//! handed out for an already-spent key without its family ending (rotation
//! rule 6 "diverged", or reuse once the two holders meet); calls fail
//! closed (UNAVAILABLE) while there is no master, and the service comes
//! back by itself. With `replica_acks = 1` no acknowledged rotation is
//! lost, so nothing diverges and no chain that was not replayed is ended.
//! The figures each run prints are recorded in BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokengate_test_support::prelude::*;
use tokengate_test_support::redis_sentinel::SentinelGroup;

/// Chains per third: replayed after the first failover, after the second,
/// and never.
const CHAINS_PER_GROUP: usize = 50;
/// Pause between a chain's refreshes, so hundreds of chains load the
/// server without starving the sentinels of CPU.
const PAUSE: Duration = Duration::from_millis(20);
/// How far behind the master the replicas are when it is killed.
const LAG: Duration = Duration::from_millis(500);
/// How long to wait for anything the test waits on.
const PATIENCE: Duration = Duration::from_secs(60);

/// One failover test at a time: both kill masters and load the machine,
/// and a failover slowed by the other test's load would say nothing.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A refresh chain, one user session after another: the token it holds,
/// which login (family) it belongs to, the tokens it spent (with when and
/// of which login), and how many of its families ended.
#[derive(Default)]
struct Chain {
    current: String,
    login: usize,
    spent: Vec<(Instant, usize, String)>,
    successes: Vec<Instant>,
    ended: usize,
}

/// What one run saw.
#[derive(Debug, Default)]
struct Tally {
    /// Pairs the replayer got for a spent token.
    replayer_wins: usize,
    /// Replays refused (the family ended, or had already).
    replays_refused: usize,
    /// Families of the chains that ended, by group (a chain then logs in
    /// again, as its user would).
    ended: [usize; 3],
    /// UNAVAILABLE answers the chains met (and retried).
    unavailable: usize,
    /// Kill → the first successful refresh after the outage's last
    /// UNAVAILABLE, per failover: how long the service was gone.
    back_after: Vec<Duration>,
    /// Kill → sentinels agree on a new master, per failover.
    promoted_after: Vec<Duration>,
    /// The server's family-end counters by reason.
    revoked: BTreeMap<String, f64>,
}

async fn login(clients: &Clients) -> String {
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    for _ in 0..100 {
        let outcome = clients
            .call(Proto::Grpc, &issue_call(&req, json.clone()))
            .await;
        if outcome.ok() {
            return outcome.decode::<TokenInfo>().refresh_token;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no login");
}

/// `Ok(new refresh token)`, or `Err(code)`; a refusal other than
/// UNAVAILABLE or "invalid refresh token" fails the test.
async fn refresh(clients: &Clients, proto: Proto, token: &str) -> Result<String, i32> {
    let outcome = clients
        .call(proto, &refresh_call(vec![("token", token.to_owned())]))
        .await;
    match outcome.code {
        0 => Ok(outcome.decode::<TokenInfo>().refresh_token),
        UNAVAILABLE => Err(UNAVAILABLE),
        UNAUTHENTICATED if outcome.message.starts_with("ERROR_INVALID_REFRESH_TOKEN") => {
            Err(UNAUTHENTICATED)
        }
        _ => panic!("unexpected refusal: {outcome:?}"),
    }
}

const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

/// Refreshes chain `index` until `stop`; UNAVAILABLE is retried with the
/// same token, as SPEC §3 tells clients to, and a family that ended is
/// followed by a new login.
async fn run_chain(
    clients: Arc<Clients>,
    chains: Arc<Vec<Mutex<Chain>>>,
    index: usize,
    stop: Arc<AtomicBool>,
    paused: Arc<[AtomicBool; 3]>,
    unavailable: Arc<Mutex<Vec<Instant>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        if paused[index / CHAINS_PER_GROUP].load(Ordering::Relaxed) {
            tokio::time::sleep(PAUSE).await;
            continue;
        }
        let token = chains[index].lock().expect("chain").current.clone();
        match refresh(&clients, Proto::Grpc, &token).await {
            Ok(next) => {
                let mut chain = chains[index].lock().expect("chain");
                let now = Instant::now();
                let login = chain.login;
                chain.spent.push((now, login, token));
                chain.successes.push(now);
                chain.current = next;
            }
            Err(UNAVAILABLE) => unavailable.lock().expect("log").push(Instant::now()),
            Err(UNAUTHENTICATED) => {
                let fresh = login(&clients).await;
                let mut chain = chains[index].lock().expect("chain");
                chain.ended += 1;
                chain.login += 1;
                chain.current = fresh;
            }
            Err(code) => panic!("chain {index}: unexpected code {code}"),
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// The replayer: for each chain of `group`, a token it spent, presented
/// again over REST: the first it spent after the replicas were cut off
/// (`began`), the one a promoted replica that missed the writes since then
/// takes for live; without one, the last it spent before. A pair it gets
/// is used at once, as a thief would; returns, per family it won, the
/// chain, the login and the thief's latest token.
async fn replay(
    clients: &Clients,
    chains: &[Mutex<Chain>],
    group: usize,
    (began, killed_at): (Instant, Instant),
    tally: &mut Tally,
) -> Vec<(usize, usize, String)> {
    let mut wins = Vec::new();
    let members = chains
        .iter()
        .enumerate()
        .skip(group * CHAINS_PER_GROUP)
        .take(CHAINS_PER_GROUP);
    for (index, chain) in members {
        let spent = {
            let chain = chain.lock().expect("chain");
            let lost = chain
                .spent
                .iter()
                .find(|(at, _, _)| *at >= began && *at < killed_at);
            lost.or_else(|| chain.spent.iter().rev().find(|(at, _, _)| *at < began))
                .map(|(_, login, token)| (*login, token.clone()))
        };
        let Some((login, spent)) = spent else {
            continue;
        };
        let outcome = loop {
            match refresh(clients, Proto::Rest, &spent).await {
                Err(UNAVAILABLE) => tokio::time::sleep(Duration::from_millis(50)).await,
                other => break other,
            }
        };
        match outcome {
            Ok(stolen) => {
                tally.replayer_wins += 1;
                // The thief goes on with it.
                let latest = match refresh(clients, Proto::Rest, &stolen).await {
                    Ok(next) => next,
                    Err(_) => stolen,
                };
                wins.push((index, login, latest));
            }
            Err(_) => tally.replays_refused += 1,
        }
    }
    wins
}

/// Kill → the first successful refresh of any chain after `after`.
fn first_success(chains: &[Mutex<Chain>], killed_at: Instant, after: Instant) -> Option<Duration> {
    chains
        .iter()
        .filter_map(|c| {
            c.lock()
                .expect("chain")
                .successes
                .iter()
                .find(|at| **at > after)
                .copied()
        })
        .min()
        .map(|at| at - killed_at)
}

/// Lags the replicas, kills the current master, waits for the sentinels
/// to promote a replica, and restarts the killed node (the sentinels make
/// it a replica of the new master). `idle` is set at the kill: those
/// chains' users are idle then, so the replayer comes first. Returns when
/// the incident began (the replicas froze) and when the master was killed.
///
/// The replicas are frozen and cut off for [`LAG`] before the kill, so the
/// promoted one misses the master's last writes, as a replica lagging at
/// the moment of a crash does (on loopback, replication is otherwise too
/// quick to lose any).
fn fail_over(
    group: &mut SentinelGroup,
    idle: &AtomicBool,
    tally: &mut Tally,
) -> (Instant, Instant) {
    let old = group.master_port().expect("a master before the kill");
    let replicas: Vec<u16> = group
        .nodes
        .iter()
        .map(|n| n.port)
        .filter(|p| *p != old)
        .collect();
    let began = Instant::now();
    for port in &replicas {
        group.node_mut(*port).freeze();
    }
    // The links to the frozen replicas are cut at the master: what it
    // writes from now on reaches no replica (what it sent before still
    // waits in the replicas' socket buffers and arrives after the thaw).
    group
        .node_mut(old)
        .command(&["CLIENT", "KILL", "TYPE", "replica"]);
    std::thread::sleep(LAG);
    idle.store(true, Ordering::Relaxed);
    let killed_at = Instant::now();
    group.node_mut(old).kill();
    for port in &replicas {
        group.node_mut(*port).thaw();
    }
    let (_, took) = group.wait_for_new_master(old, PATIENCE);
    tally.promoted_after.push(took);
    group.node_mut(old).restart();
    (began, killed_at)
}

async fn chaos(replica_acks: u32) -> Tally {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut group = tokio::task::block_in_place(|| SentinelGroup::start(2, 3));
    let server = TestServer::start_with(ServerOptions {
        extra_config: format!(
            // Chains refresh far more often than a session's 18 refreshes.
            "[token]\nrefresh_ttl = 1000000\n[store]\nredis_url = \"{}\"\nreplica_acks = {replica_acks}\n",
            group.url()
        ),
        bcrypt_cost: 4,
        ..ServerOptions::default()
    });
    let clients = Arc::new(Clients::new(&server).await);
    let mut chains = Vec::new();
    for _ in 0..3 * CHAINS_PER_GROUP {
        chains.push(Mutex::new(Chain {
            current: login(&clients).await,
            ..Chain::default()
        }));
    }
    let chains = Arc::new(chains);
    let stop = Arc::new(AtomicBool::new(false));
    let paused: Arc<[AtomicBool; 3]> = Arc::new(Default::default());
    let unavailable = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..chains.len())
        .map(|i| {
            tokio::spawn(run_chain(
                clients.clone(),
                chains.clone(),
                i,
                stop.clone(),
                paused.clone(),
                unavailable.clone(),
            ))
        })
        .collect();

    let mut tally = Tally::default();
    let mut thieves = Vec::new();
    let mut kills = Vec::new();
    for failover in 0..2 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (began, killed_at) =
            tokio::task::block_in_place(|| fail_over(&mut group, &paused[failover], &mut tally));
        kills.push((began, killed_at));
        thieves.extend(replay(&clients, &chains, failover, (began, killed_at), &mut tally).await);
        paused[failover].store(false, Ordering::Relaxed);
        // Service is back once some chain refreshes again.
        let started = Instant::now();
        loop {
            if first_success(&chains, killed_at, started).is_some() {
                break;
            }
            if started.elapsed() > PATIENCE {
                let ended: usize = chains.iter().map(|c| c.lock().expect("chain").ended).sum();
                let logs = server.logs();
                let tail: Vec<&str> = logs.lines().rev().take(30).collect();
                panic!(
                    "no refresh succeeded after the kill ({ended} families ended); log tail:\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Both replicas back in sync before the next kill.
        tokio::task::block_in_place(|| group.wait_settled(2, PATIENCE));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("chain task");
    }
    let unavailable = unavailable.lock().expect("log").clone();
    tally.unavailable = unavailable.len();
    for (i, (began, killed_at)) in kills.iter().enumerate() {
        let until = kills.get(i + 1).map_or_else(Instant::now, |next| next.0);
        let last_refusal = unavailable
            .iter()
            .filter(|at| *at >= began && *at < &until)
            .max()
            .copied()
            .unwrap_or(*killed_at);
        let back = first_success(&chains, *killed_at, last_refusal).expect("service back");
        tally.back_after.push(back);
    }

    // Every pair the replayer got must have ended its family: the thief's
    // token is refused, and so is the chain's if it still holds that family
    // (otherwise the chain was refused it already and logged in again).
    for (index, login, thief) in &thieves {
        let (current, current_login) = {
            let chain = chains[*index].lock().expect("chain");
            (chain.current.clone(), chain.login)
        };
        if current_login == *login {
            let chain_says = refresh(&clients, Proto::Grpc, &current).await;
            assert_eq!(
                chain_says.err(),
                Some(UNAUTHENTICATED),
                "chain {index}: a replayed token won and the family lives on"
            );
        }
        let thief_says = refresh(&clients, Proto::Rest, thief).await;
        assert_eq!(
            thief_says.err(),
            Some(UNAUTHENTICATED),
            "chain {index}: the thief's chain lives on"
        );
    }
    for (index, chain) in chains.iter().enumerate() {
        tally.ended[index / CHAINS_PER_GROUP] += chain.lock().expect("chain").ended;
    }
    for reason in ["reuse", "diverged", "password_changed"] {
        let series = format!("tokengate_families_revoked_total{{reason=\"{reason}\"}}");
        tally
            .revoked
            .insert(reason.to_owned(), server.metric(&series).await);
    }
    eprintln!("replica_acks = {replica_acks}: {tally:?}");
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_without_replica_acks_ends_every_family_a_replay_won() {
    let tally = chaos(0).await;
    assert_eq!(tally.back_after.len(), 2);
    // The lag made the promoted replicas miss writes, and the tokens those
    // writes handed out were refused as unseen, not trusted.
    assert!(
        tally.revoked["diverged"] > 0.0,
        "no write was lost: {tally:?}"
    );
    // Chains never replayed end only through a lost write of their own.
    assert!(
        tally.ended[2] as f64 <= tally.revoked["diverged"],
        "{tally:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_with_one_replica_ack_loses_no_rotation() {
    let tally = chaos(1).await;
    assert_eq!(tally.back_after.len(), 2);
    assert_eq!(tally.revoked["diverged"], 0.0, "{tally:?}");
    assert_eq!(
        tally.ended[2], 0,
        "a chain never replayed was ended: {tally:?}"
    );
}
