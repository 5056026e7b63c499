//! A replicated Redis behind Redis Sentinel, on free ports of 127.0.0.1:
//! one master, its replicas and a quorum of sentinels, each a
//! [`RedisServer`] (so each has its watchdog and dies with the test). The
//! tests kill masters and watch the sentinels promote a replica.

use std::time::{Duration, Instant};

use crate::redis_server::RedisServer;

/// The name the sentinels know the master by.
pub const MASTER_NAME: &str = "tokengate-test";

/// How long a master may be silent before a sentinel thinks it down. Short,
/// so a failover takes seconds, not the 30 s default.
const DOWN_AFTER_MS: u64 = 1000;

/// Bounds a failover and is also the pause before the same sentinels try
/// another failover of one master.
const FAILOVER_TIMEOUT_MS: u64 = 3000;

/// A master with replicas and sentinels watching them.
pub struct SentinelGroup {
    /// The data nodes; the first started as the master. Which one is master
    /// now is [`SentinelGroup::master_port`]'s answer.
    pub nodes: Vec<RedisServer>,
    /// The sentinels.
    pub sentinels: Vec<RedisServer>,
}

/// `field:value` out of an `INFO` reply.
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

impl SentinelGroup {
    /// A master, `replicas` replicas in sync with it, and `sentinels`
    /// sentinels (quorum: a majority) that all know every replica and each
    /// other. Panics if that is not reached within 30 s.
    pub fn start(replicas: usize, sentinels: usize) -> Self {
        Self::start_with_auth(replicas, sentinels, None, None)
    }

    /// [`SentinelGroup::start`] with passwords: `data` for the master and
    /// replicas (`requirepass`, and `masterauth` and the sentinels'
    /// `auth-pass` to match), `sentinel` for the sentinels' own
    /// `requirepass`.
    pub fn start_with_auth(
        replicas: usize,
        sentinels: usize,
        data: Option<&str>,
        sentinel: Option<&str>,
    ) -> Self {
        let auth: Vec<&str> = data
            .map(|p| vec!["--requirepass", p, "--masterauth", p])
            .unwrap_or_default();
        let with_password = |mut server: RedisServer, password: Option<&str>| {
            if let Some(password) = password {
                server.set_password(password);
            }
            server
        };
        let master = with_password(RedisServer::start_with(&auth), data);
        let master_port = master.port.to_string();
        let mut nodes = vec![master];
        for _ in 0..replicas {
            let mut args = vec!["--replicaof", "127.0.0.1", &master_port];
            args.extend(&auth);
            nodes.push(with_password(RedisServer::start_with(&args), data));
        }
        let quorum = sentinels / 2 + 1;
        let mut config = format!(
            "sentinel resolve-hostnames no\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {quorum}\n\
             sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n\
             sentinel parallel-syncs {MASTER_NAME} 2"
        );
        if let Some(password) = data {
            config.push_str(&format!("\nsentinel auth-pass {MASTER_NAME} {password}"));
        }
        if let Some(password) = sentinel {
            // Sentinels also talk to each other: with the same password.
            config.push_str(&format!(
                "\nrequirepass {password}\nsentinel sentinel-pass {password}"
            ));
        }
        let sentinels = (0..sentinels)
            .map(|_| with_password(RedisServer::start_sentinel(&config), sentinel))
            .collect();
        let group = Self { nodes, sentinels };
        group.wait_settled(replicas, Duration::from_secs(30));
        group
    }

    /// `redis+sentinel://127.0.0.1:<port>,…/<master name>`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The master's port as every answering sentinel names it, if they
    /// agree and that node says it is a master.
    pub fn master_port(&self) -> Option<u16> {
        let mut named = None;
        for sentinel in &self.sentinels {
            let reply = sentinel.command(&["SENTINEL", "get-master-addr-by-name", MASTER_NAME]);
            if reply.is_empty() {
                continue;
            }
            let port: u16 = reply.lines().nth(4)?.trim().parse().ok()?;
            if named.is_some_and(|p| p != port) {
                return None;
            }
            named = Some(port);
        }
        let port = named?;
        let node = self.nodes.iter().find(|n| n.port == port)?;
        let info = node.command(&["INFO", "replication"]);
        (info_field(&info, "role") == Some("master")).then_some(port)
    }

    /// The data node listening on `port`.
    pub fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this group")
    }

    /// Waits until the sentinels name a master other than `old` that says
    /// it is one; returns its port and how long that took.
    pub fn wait_for_new_master(&self, old: u16, within: Duration) -> (u16, Duration) {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(port) = self.master_port().filter(|p| *p != old) {
                return (port, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no new master within {within:?}; sentinel logs:\n{}",
            self.sentinels
                .iter()
                .map(RedisServer::log)
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
    }

    /// Waits until the master has `replicas` replicas online and every
    /// sentinel knows them and the other sentinels.
    pub fn wait_settled(&self, replicas: usize, within: Duration) {
        let started = Instant::now();
        let others = self.sentinels.len().saturating_sub(1).to_string();
        let wanted = replicas.to_string();
        while started.elapsed() < within {
            let master_ok = self.master_port().is_some_and(|port| {
                let info = self
                    .nodes
                    .iter()
                    .find(|n| n.port == port)
                    .map(|n| n.command(&["INFO", "replication"]))
                    .unwrap_or_default();
                info_field(&info, "connected_slaves") == Some(wanted.as_str())
                    && (0..replicas).all(|i| {
                        info_field(&info, &format!("slave{i}"))
                            .is_some_and(|s| s.contains("state=online"))
                    })
            });
            let sentinels_ok = self.sentinels.iter().all(|s| {
                let info = s.command(&["SENTINEL", "master", MASTER_NAME]);
                let value = |field: &str| {
                    let mut lines = info.lines();
                    lines.find(|l| l.trim() == field)?;
                    lines.nth(1).map(str::trim)
                };
                value("num-slaves") == Some(wanted.as_str())
                    && value("num-other-sentinels") == Some(others.as_str())
            });
            if master_ok && sentinels_ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the sentinel group did not settle within {within:?}");
    }
}
