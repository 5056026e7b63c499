//! Private Redis servers: each [`RedisServer`] is a `redis-server` on a
//! free port of 127.0.0.1 (never the machine's shared 6379), killed when its
//! guard drops, panics included; a [`RedisCluster`] is three of them joined
//! into a cluster.
//!
//! A test that freezes, kills or restarts its server, or needs it empty,
//! starts its own. Tests that only keep their data apart (with
//! [`unique`](crate::ids::unique) names) can share one server or cluster per
//! test binary ([`RedisServer::shared`], [`RedisCluster::shared`]), started
//! on first use.
//!
//! A shared server is a static, never dropped, and a test process can end
//! without unwinding (SIGKILL, a harness timeout): so every server comes
//! with a watchdog, a `sh` started with it that waits on a pipe from the
//! test process. The drop guard stops the watchdog, then the server; if the
//! test process ends first, however it ends, the pipe closes and the
//! watchdog kills the server and removes its folder (both kept by a
//! [`ManagedProcess`]).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::process::{ManagedProcess, NotReady};

fn binary(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` is not on PATH: the Redis store tests start their own Redis \
             and need redis-server, redis-cli and redis-sentinel installed \
             (e.g. `apt-get install redis-server redis-sentinel`)"
        )
    })
}

/// Sends one command in RESP and returns the raw reply, `None` if the
/// server does not answer within `timeout`.
pub fn raw_command(port: u16, args: &[&str], timeout: Duration) -> Option<String> {
    raw_command_as(port, None, args, timeout)
}

/// [`raw_command`] on a server that wants a password: `AUTH` first, on
/// the same connection; returns the command's reply.
pub fn raw_command_as(
    port: u16,
    password: Option<&str>,
    args: &[&str],
    timeout: Duration,
) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let encode = |args: &[&str]| {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        request
    };
    let mut request = password.map(|p| encode(&["AUTH", p])).unwrap_or_default();
    request.push_str(&encode(args));
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // Where the command's own reply starts: after AUTH's, if one was sent.
    let mut start = None;
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if start.is_none() {
            start = if password.is_some() {
                resp_end(&reply, 0)
            } else {
                Some(0)
            };
        }
        if let Some(at) = start
            && resp_end(&reply, at).is_some()
        {
            break;
        }
    }
    let at = start.unwrap_or(0).min(reply.len());
    Some(String::from_utf8_lossy(&reply[at..]).into_owned())
}

/// Where the RESP2 value starting at `at` ends, if it is all there.
fn resp_end(reply: &[u8], at: usize) -> Option<usize> {
    let line_len = reply.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let after_line = at + line_len + 2;
    let number = || -> Option<i64> {
        std::str::from_utf8(&reply[at + 1..at + line_len])
            .ok()?
            .parse()
            .ok()
    };
    match reply.get(at)? {
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Some(after_line);
            }
            let end = after_line + len as usize + 2;
            (reply.len() >= end).then_some(end)
        }
        b'*' => {
            let count = number()?;
            let mut pos = after_line;
            for _ in 0..count.max(0) {
                pos = resp_end(reply, pos)?;
            }
            Some(pos)
        }
        _ => Some(after_line),
    }
}

/// One `redis-server` process on 127.0.0.1, killed on drop.
pub struct RedisServer {
    /// The process and its watchdog. Declared before `setup` (which holds
    /// the folder): fields drop in order, and the server must be gone
    /// before its folder is removed.
    process: ManagedProcess,
    /// Its port.
    pub port: u16,
    setup: Setup,
    /// The password [`RedisServer::command`] authenticates with.
    password: Option<String>,
}

/// How a [`RedisServer`]'s process is started, apart from its `port` and
/// `process` so that it can be read while the process is being restarted.
struct Setup {
    dir: tempfile::TempDir,
    extra: Vec<String>,
    /// Serves TLS only (on `port`).
    tls: bool,
    /// A Redis Sentinel with this config (written once into its folder:
    /// the sentinel rewrites it as it learns the topology).
    sentinel: Option<String>,
}

impl RedisServer {
    /// A plain server on a free port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server on a free port with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        // Another test may grab the same free port between our probe and
        // the server's bind: try a few ports.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(free_port(), extra, false) {
                Ok(server) => return server,
                Err(e) => last = e,
            }
        }
        panic!("could not start redis-server: {last}");
    }

    /// One plain server for the whole test binary, started by the first
    /// test that asks; it lives until the test process exits. Tests sharing
    /// it must keep their keys apart ([`unique`](crate::ids::unique) names
    /// or key prefixes) and must not freeze it.
    pub fn shared() -> &'static RedisServer {
        static SHARED: OnceLock<RedisServer> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    /// A plain server on the given port (which must be free).
    pub fn start_on(port: u16) -> Self {
        Self::try_start(port, &[], false)
            .unwrap_or_else(|e| panic!("could not start redis-server: {e}"))
    }

    /// A TLS-only server on a free port with the given certificate, key
    /// and CA (clients are not asked for certificates).
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path) -> Self {
        let (cert, key, ca) = (path_arg(cert), path_arg(key), path_arg(ca));
        let extra = [
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ];
        Self::try_start(free_port(), &extra, true)
            .unwrap_or_else(|e| panic!("could not start redis-server with TLS: {e}"))
    }

    fn try_start(port: u16, extra: &[&str], tls: bool) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let mut server = Self {
            process: ManagedProcess::new("redis-server"),
            port,
            setup: Setup {
                dir,
                extra,
                tls,
                sentinel: None,
            },
            password: None,
        };
        server.start_process()?;
        Ok(server)
    }

    /// A Redis Sentinel (`redis-sentinel`) on a free port whose config is
    /// `config` (the port, bind address, folder and log lines are added).
    pub fn start_sentinel(config: &str) -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut server = Self {
                process: ManagedProcess::new("redis-server"),
                port: free_port(),
                setup: Setup {
                    dir,
                    extra: Vec::new(),
                    tls: false,
                    sentinel: Some(config.to_owned()),
                },
                password: None,
            };
            match server.start_process() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("could not start redis-sentinel: {last}");
    }

    /// Sends one command and returns the raw RESP reply (empty if the
    /// server does not answer within a second).
    pub fn command(&self, args: &[&str]) -> String {
        raw_command_as(
            self.port,
            self.password.as_deref(),
            args,
            Duration::from_secs(1),
        )
        .unwrap_or_default()
    }

    /// The password [`RedisServer::command`] authenticates with (the
    /// server's own `requirepass`, set by the caller's arguments).
    pub fn set_password(&mut self, password: &str) {
        self.password = Some(password.to_owned());
    }

    /// Starts the process (and its watchdog) and waits until it answers;
    /// on failure it is stopped again, with the reason and its log.
    fn start_process(&mut self) -> Result<(), String> {
        self.setup
            .start(&mut self.process, self.port)
            .map_err(|e| self.not_ready(e))
    }

    fn not_ready(&self, why: NotReady) -> String {
        match why {
            NotReady::Exited(status) => format!(
                "redis-server on port {} exited ({status}): {}",
                self.port,
                self.log()
            ),
            NotReady::TimedOut => format!(
                "redis-server on port {} did not answer PING: {}",
                self.port,
                self.log()
            ),
        }
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.setup.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        assert!(self.process.signal(signal), "kill {signal} failed");
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub fn kill(&mut self) {
        self.process.stop();
    }

    /// Starts the server again on the same port (empty: nothing persists).
    pub fn restart(&mut self) {
        let (setup, port) = (&self.setup, self.port);
        let restarted = self.process.restart(
            Duration::from_secs(10),
            Duration::from_millis(100),
            |process| setup.start(process, port),
        );
        if let Err(e) = restarted {
            panic!("restart failed: {}", self.not_ready(e));
        }
    }
}

impl Setup {
    /// Starts the server on `port` under `process` and waits until it
    /// answers.
    fn start(&self, process: &mut ManagedProcess, port: u16) -> Result<(), NotReady> {
        let dir = self.dir.path();
        let mut command = match &self.sentinel {
            Some(config) => sentinel_command(port, dir, config),
            None => server_command(port, dir, &self.extra, self.tls),
        };
        let tls = self.tls;
        process.start(
            &mut command,
            dir,
            Duration::from_secs(10),
            Duration::from_millis(20),
            || answers(port, tls),
        )
    }
}

/// Whether the server on `port` is ready. Any reply counts (a
/// password-protected server answers NOAUTH). A TLS port cannot be spoken
/// to in plain text: that it accepts connections must do (it listens only
/// once its certs loaded).
fn answers(port: u16, tls: bool) -> bool {
    if tls {
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
            .is_ok()
    } else {
        raw_command(port, &["PING"], Duration::from_millis(200))
            .is_some_and(|r| r.starts_with('+') || r.starts_with('-'))
    }
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("UTF-8 temp path").to_owned()
}

/// The `redis-server` command line: no persistence, the log in `dir`.
fn server_command(port: u16, dir: &Path, extra: &[String], tls: bool) -> Command {
    let port = port.to_string();
    let mut command = Command::new(binary("redis-server"));
    if tls {
        command.args(["--port", "0", "--tls-port", &port]);
    } else {
        command.args(["--port", &port]);
    }
    command
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The `redis-sentinel` command line, its config file written first.
fn sentinel_command(port: u16, dir: &Path, config: &str) -> Command {
    let file = dir.join("sentinel.conf");
    // Written once: on a restart the sentinel goes on from what it wrote.
    if !file.exists() {
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\n{config}\n",
            path_arg(dir),
            path_arg(&dir.join("redis.log"))
        );
        std::fs::write(&file, text).expect("write sentinel.conf");
    }
    let mut command = Command::new(binary("redis-sentinel"));
    command
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// A local three-master Redis Cluster, torn down on drop.
pub struct RedisCluster {
    /// The masters.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers and joins them with
    /// `redis-cli --cluster create`, then waits for `cluster_state:ok`.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                // The cluster bus gets its own free port (by default it is
                // port + 10000, which may be taken or out of range).
                let bus = free_port().to_string();
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus,
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let output = Command::new(binary("redis-cli"))
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            loop {
                let info = raw_command(node.port, &["CLUSTER", "INFO"], Duration::from_secs(1))
                    .unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster node {} never reached cluster_state:ok: {info}",
                    node.port
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { nodes }
    }

    /// One cluster for the whole test binary, started by the first test that
    /// asks; it lives until the test process exits (like
    /// [`RedisServer::shared`]).
    pub fn shared() -> &'static RedisCluster {
        static SHARED: OnceLock<RedisCluster> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Each node's `redis://` URL.
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}
