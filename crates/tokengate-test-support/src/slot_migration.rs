//! Resharding a [`RedisCluster`] by hand, the way `redis-cli --cluster
//! reshard` does it, one step at a time so that a test can run load while a
//! slot is half moved:
//!
//! 1. `CLUSTER SETSLOT <slot> IMPORTING <source>` on the target, then
//!    `CLUSTER SETSLOT <slot> MIGRATING <target>` on the source
//!    ([`RedisCluster::begin_migration`]);
//! 2. `CLUSTER GETKEYSINSLOT` and `MIGRATE … KEYS …` in batches
//!    ([`SlotMigration::move_keys`]): meanwhile the slot's keys are split
//!    between the two masters, the source answers `ASK` for a key it no
//!    longer holds and either master answers `TRYAGAIN` to a multi-key
//!    command whose keys it does not all hold;
//! 3. `CLUSTER SETSLOT <slot> NODE <target>` on the target, the source and
//!    then every other master ([`SlotMigration::finish`]), after which the
//!    old owner answers `MOVED`.
//!
//! Every command is blocking (plain RESP over TCP, bounded by a timeout):
//! call these from a thread or `spawn_blocking`, not from an async task.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::redis_server::RedisCluster;

/// How long one admin command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The `timeout` argument of `MIGRATE`, milliseconds.
const MIGRATE_TIMEOUT_MS: &str = "5000";

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+…`
    Status(String),
    /// `-…`
    Error(String),
    /// `:…`
    Integer(i64),
    /// `$…` (`None`: the null bulk string).
    Bulk(Option<String>),
    /// `*…` (`None`: the null array).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as an integer; panics with `what` otherwise.
    fn integer(&self, what: &str) -> i64 {
        match self {
            Self::Integer(n) => *n,
            other => panic!("{what}: expected an integer, got {other:?}"),
        }
    }

    /// The reply as text (status or bulk); panics with `what` otherwise.
    fn text(&self, what: &str) -> String {
        match self {
            Self::Status(s) | Self::Bulk(Some(s)) => s.clone(),
            other => panic!("{what}: expected text, got {other:?}"),
        }
    }

    /// The reply as an array of bulk strings; panics with `what` otherwise.
    fn strings(&self, what: &str) -> Vec<String> {
        match self {
            Self::Array(Some(items)) => items.iter().map(|i| i.text(what)).collect(),
            other => panic!("{what}: expected an array, got {other:?}"),
        }
    }
}

/// Parses one reply at the start of `buf`: the reply and the bytes it
/// took, or `None` if `buf` does not hold all of it yet.
fn parse(buf: &[u8]) -> Option<(Reply, usize)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = String::from_utf8_lossy(&buf[1..line_end]).into_owned();
    let rest = line_end + 2;
    let number = || -> i64 {
        line.parse()
            .unwrap_or_else(|_| panic!("bad RESP length or integer {line:?}"))
    };
    match buf.first()? {
        b'+' => Some((Reply::Status(line), rest)),
        b'-' => Some((Reply::Error(line), rest)),
        b':' => Some((Reply::Integer(number()), rest)),
        b'$' => {
            let Ok(len) = usize::try_from(number()) else {
                return Some((Reply::Bulk(None), rest));
            };
            if buf.len() < rest + len + 2 {
                return None;
            }
            let text = String::from_utf8_lossy(&buf[rest..rest + len]).into_owned();
            Some((Reply::Bulk(Some(text)), rest + len + 2))
        }
        b'*' => {
            let Ok(count) = usize::try_from(number()) else {
                return Some((Reply::Array(None), rest));
            };
            let mut items = Vec::with_capacity(count);
            let mut at = rest;
            for _ in 0..count {
                let (item, used) = parse(&buf[at..])?;
                items.push(item);
                at += used;
            }
            Some((Reply::Array(Some(items)), at))
        }
        other => panic!("unexpected RESP type byte {other:#x}"),
    }
}

/// Sends one command to the server on `port` and returns its reply (an
/// error reply included); panics if the server does not answer within
/// [`COMMAND_TIMEOUT`].
pub fn command(port: u16, args: &[&str]) -> Reply {
    let fail = |e: std::io::Error| -> ! { panic!("{args:?} on port {port}: {e}") };
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), COMMAND_TIMEOUT)
        .unwrap_or_else(|e| fail(e));
    stream
        .set_read_timeout(Some(COMMAND_TIMEOUT))
        .unwrap_or_else(|e| fail(e));
    stream
        .set_write_timeout(Some(COMMAND_TIMEOUT))
        .unwrap_or_else(|e| fail(e));
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| fail(e));
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some((parsed, _)) = parse(&reply) {
            return parsed;
        }
        let n = stream.read(&mut buf).unwrap_or_else(|e| fail(e));
        assert!(
            n > 0,
            "{args:?} on port {port}: connection closed mid-reply"
        );
        reply.extend_from_slice(&buf[..n]);
    }
}

/// Like [`command`], but panics on an error reply.
fn ok(port: u16, args: &[&str]) -> Reply {
    match command(port, args) {
        Reply::Error(e) => panic!("{args:?} on port {port} failed: {e}"),
        reply => reply,
    }
}

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The cluster slot of `key`: CRC16 of its hash tag (the text between the
/// first `{` and the next `}`, if not empty) or of the whole key, mod 16384.
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = bytes
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let after = &bytes[open + 1..];
            let close = after.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &after[..close])
        })
        .unwrap_or(bytes);
    crc16(hashed) % 16384
}

/// One master as a node sees it in `CLUSTER NODES`.
struct NodeLine {
    /// The port it serves clients on.
    port: u16,
    /// Its slot ranges and, on the node itself, `[slot->-id]` /
    /// `[slot-<-id]` markers of slots it is migrating or importing.
    slots: Vec<String>,
}

/// Parses `CLUSTER NODES` output.
fn node_lines(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let addr = fields[1].split('@').next().expect("ip:port");
            let port = addr
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no port in CLUSTER NODES line {line:?}"));
            NodeLine {
                port,
                slots: fields[8..].iter().map(|s| (*s).to_owned()).collect(),
            }
        })
        .collect()
}

/// Whether the `CLUSTER NODES` slot field `range` (`n` or `a-b`) holds
/// `slot`.
fn range_holds(range: &str, slot: u16) -> bool {
    if range.starts_with('[') {
        return false;
    }
    let (a, b) = range.split_once('-').unwrap_or((range, range));
    match (a.parse::<u16>(), b.parse::<u16>()) {
        (Ok(a), Ok(b)) => (a..=b).contains(&slot),
        _ => false,
    }
}

impl RedisCluster {
    /// The cluster node id of master `node` (`CLUSTER MYID`).
    pub fn node_id(&self, node: usize) -> String {
        ok(self.nodes[node].port, &["CLUSTER", "MYID"]).text("CLUSTER MYID")
    }

    /// Which master (an index into [`nodes`](Self::nodes)) owns `slot` in
    /// the view of master `viewer`, if any.
    pub fn slot_owner_seen_by(&self, viewer: usize, slot: u16) -> Option<usize> {
        let text = ok(self.nodes[viewer].port, &["CLUSTER", "NODES"]).text("CLUSTER NODES");
        let owner_port = node_lines(&text)
            .into_iter()
            .find(|n| n.slots.iter().any(|r| range_holds(r, slot)))?
            .port;
        self.nodes.iter().position(|n| n.port == owner_port)
    }

    /// The master that owns `slot`, as master 0 sees it; panics if none.
    pub fn slot_owner(&self, slot: u16) -> usize {
        self.slot_owner_seen_by(0, slot)
            .unwrap_or_else(|| panic!("no master owns slot {slot}"))
    }

    /// Whether master `node` has a migration or import of `slot` open.
    pub fn slot_is_open_on(&self, node: usize, slot: u16) -> bool {
        let text = ok(self.nodes[node].port, &["CLUSTER", "NODES"]).text("CLUSTER NODES");
        let marker = format!("[{slot}-");
        node_lines(&text)
            .iter()
            .any(|n| n.slots.iter().any(|s| s.starts_with(&marker)))
    }

    /// How many keys of `slot` master `node` holds (`CLUSTER
    /// COUNTKEYSINSLOT`).
    pub fn keys_in_slot(&self, node: usize, slot: u16) -> usize {
        let slot = slot.to_string();
        let n = ok(
            self.nodes[node].port,
            &["CLUSTER", "COUNTKEYSINSLOT", &slot],
        )
        .integer("CLUSTER COUNTKEYSINSLOT");
        usize::try_from(n).expect("a count")
    }

    /// Opens the migration of `slot` from its owner to master `to`: the
    /// target imports it, then the source migrates it. Keys stay where they
    /// are until [`SlotMigration::move_keys`] moves them.
    pub fn begin_migration(&self, slot: u16, to: usize) -> SlotMigration<'_> {
        let from = self.slot_owner(slot);
        assert_ne!(from, to, "slot {slot} is already on master {to}");
        let (from_id, to_id) = (self.node_id(from), self.node_id(to));
        let slot_arg = slot.to_string();
        ok(
            self.nodes[to].port,
            &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &from_id],
        );
        ok(
            self.nodes[from].port,
            &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &to_id],
        );
        SlotMigration {
            cluster: self,
            slot,
            from,
            to,
            to_id,
            moved: 0,
        }
    }
}

/// A slot migration in progress (see the module docs); nothing undoes it
/// when dropped.
pub struct SlotMigration<'a> {
    cluster: &'a RedisCluster,
    /// The slot being moved.
    pub slot: u16,
    /// The master it leaves (an index into the cluster's nodes).
    pub from: usize,
    /// The master it goes to.
    pub to: usize,
    to_id: String,
    /// Keys moved so far.
    moved: usize,
}

impl SlotMigration<'_> {
    /// Moves up to `batch` of the slot's keys still on the source to the
    /// target in one `MIGRATE … KEYS` (atomic for those keys); returns how
    /// many it moved (0: none left on the source).
    pub fn move_keys(&mut self, batch: usize) -> usize {
        let source = self.cluster.nodes[self.from].port;
        let target = self.cluster.nodes[self.to].port.to_string();
        let (slot, count) = (self.slot.to_string(), batch.max(1).to_string());
        let keys = ok(source, &["CLUSTER", "GETKEYSINSLOT", &slot, &count])
            .strings("CLUSTER GETKEYSINSLOT");
        if keys.is_empty() {
            return 0;
        }
        let mut args = vec![
            "MIGRATE",
            "127.0.0.1",
            &target,
            "",
            "0",
            MIGRATE_TIMEOUT_MS,
            "KEYS",
        ];
        args.extend(keys.iter().map(String::as_str));
        // No REPLACE: a key of the slot already on the target would be a
        // bug of the migration, so let MIGRATE refuse it (BUSYKEY).
        // NOKEY: the keys expired meanwhile, which is no error.
        let reply = ok(source, &args).text("MIGRATE");
        assert!(
            reply == "OK" || reply == "NOKEY",
            "MIGRATE answered {reply}"
        );
        self.moved += keys.len();
        keys.len()
    }

    /// Keys moved so far (including any that expired on the way).
    pub fn moved(&self) -> usize {
        self.moved
    }

    /// Ends the migration: moves whatever keys are left, then assigns the
    /// slot to the target on the target, the source and every other master
    /// (in that order, as the Redis Cluster specification asks), and waits
    /// until every master sees the target as the owner with nothing left
    /// open. Panics if that takes longer than `within`.
    pub fn finish(mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.move_keys(100) > 0 {
            assert!(
                Instant::now() < deadline,
                "slot {}: keys still on the source",
                self.slot
            );
        }
        let slot = self.slot.to_string();
        let mut order = vec![self.to, self.from];
        order.extend((0..self.cluster.nodes.len()).filter(|n| *n != self.to && *n != self.from));
        for node in order {
            ok(
                self.cluster.nodes[node].port,
                &["CLUSTER", "SETSLOT", &slot, "NODE", &self.to_id],
            );
        }
        for viewer in 0..self.cluster.nodes.len() {
            loop {
                let owner = self.cluster.slot_owner_seen_by(viewer, self.slot);
                if owner == Some(self.to) && !self.cluster.slot_is_open_on(viewer, self.slot) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "slot {}: master {viewer} still sees owner {owner:?} after SETSLOT NODE",
                    self.slot
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
