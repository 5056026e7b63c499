//! Private PostgreSQL servers: each [`PostgresServer`] is Debian's
//! `postgres` on a free port of 127.0.0.1 (never the machine's 5432), its
//! cluster made by `initdb` in a temporary folder, with `trust`
//! authentication for the user `tokengate`. PostgreSQL refuses to run as
//! root: under root the server runs as the `postgres` user. Like
//! [`RedisServer`](crate::redis_server::RedisServer), every server comes
//! with a watchdog that kills it and removes its folder if the test
//! process ends without dropping it.

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ports::free_port;
use crate::process::{ManagedProcess, NotReady};

/// The server's log file, in its folder.
const LOG: &str = "postgres.log";

/// The password of the `tokengate` role.
pub const PASSWORD: &str = "pg-Secret-5150";

/// Where Debian keeps PostgreSQL's server binaries (the newest version),
/// else `PATH`.
fn binary(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin").join(name))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|p| {
        p.components()
            .nth(3)
            .and_then(|c| c.as_os_str().to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(newest) = versions.pop() {
        return newest;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found: the PostgreSQL directory tests start their own server \
                 and need Debian's postgresql package (`apt-get install postgresql`)"
            )
        })
}

/// The uid and gid to run the server as: the `postgres` user when we are
/// root (PostgreSQL refuses root), else nobody else.
fn server_user() -> Option<(u32, u32)> {
    let euid = std::fs::metadata("/proc/self").ok()?.uid();
    if euid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

/// One PostgreSQL server on 127.0.0.1, killed on drop.
pub struct PostgresServer {
    /// The process and its watchdog. Declared before `dir`: fields drop in
    /// order, and the server must be gone before its folder is removed.
    process: ManagedProcess,
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
    user: Option<(u32, u32)>,
    /// Extra `postgres` arguments (TLS).
    extra: Vec<String>,
}

impl PostgresServer {
    /// A fresh cluster on a free port, ready for connections.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// The same, also offering TLS with a certificate for 127.0.0.1 and
    /// `localhost` issued by a private CA ([`Self::ca_file`]), made with
    /// the `openssl` command.
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    /// The private CA's certificate (PEM) of a [`Self::start_tls`] server.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn start_with(tls: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = server_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown tempdir");
        }
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD).expect("write pwfile");
        let mut initdb = Command::new(binary("initdb"));
        initdb
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                "tokengate",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null());
        if let Some((uid, gid)) = user {
            initdb.uid(uid).gid(gid);
        }
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut extra = Vec::new();
        if tls {
            crate::certs::make_certificates(dir.path(), user);
            for setting in [
                "ssl=on".to_owned(),
                format!("ssl_cert_file={}", dir.path().join("server.crt").display()),
                format!("ssl_key_file={}", dir.path().join("server.key").display()),
            ] {
                extra.push("-c".to_owned());
                extra.push(setting);
            }
        }
        let mut last = String::new();
        let mut server = Self {
            process: ManagedProcess::new("postgres"),
            port: 0,
            dir,
            user,
            extra,
        };
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("could not start postgres: {last}");
    }

    /// Starts the server (and its watchdog) on `self.port` and waits
    /// until it answers a query; on failure it is stopped again, with the
    /// reason and its log.
    fn spawn(&mut self) -> Result<(), String> {
        let (port, dir, user, extra) = (self.port, self.dir.path(), self.user, &self.extra);
        launch(&mut self.process, dir, port, user, extra).map_err(|e| self.not_ready(e))
    }

    fn not_ready(&self, why: NotReady) -> String {
        match why {
            NotReady::Exited(status) => format!("postgres exited ({status}): {}", self.log()),
            NotReady::TimedOut => format!("postgres did not become ready: {}", self.log()),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG)
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `postgres://tokengate@127.0.0.1:<port>/postgres?sslmode=disable`
    /// (the password is given apart: [`PASSWORD`]).
    pub fn url(&self) -> String {
        format!(
            "postgres://tokengate@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Runs SQL with `psql` (unaligned, tuples only); its output, or its
    /// error text.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        try_psql(self.port, sql)
    }

    /// The environment that points `tokengate serve` at this server:
    /// `TOKENGATE_DIRECTORY` and `TOKENGATE_POSTGRES_PASSWORD`.
    pub fn server_env(&self) -> Vec<(String, String)> {
        vec![
            ("TOKENGATE_DIRECTORY".to_owned(), self.url()),
            (
                "TOKENGATE_POSTGRES_PASSWORD".to_owned(),
                PASSWORD.to_owned(),
            ),
        ]
    }

    /// Runs SQL with `psql`; panics on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} failed: {e}"))
    }

    /// Stops the server (fast shutdown: clients are disconnected); the
    /// port stops accepting.
    pub fn stop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown; a server that does not
        // finish it within 10 s is killed.
        self.process.stop_with("-INT", Duration::from_secs(10));
    }

    /// Starts the stopped server again on the same port, with its data.
    pub fn restart(&mut self) {
        // A fast shutdown first (the process's restart would kill it).
        self.stop();
        let (port, dir, user, extra) = (self.port, self.dir.path(), self.user, &self.extra);
        let restarted = self.process.restart(
            Duration::from_secs(20),
            Duration::from_millis(200),
            |process| launch(process, dir, port, user, extra),
        );
        if let Err(e) = restarted {
            panic!("postgres restart failed: {}", self.not_ready(e));
        }
    }
}

/// Starts `postgres` on `port` with the cluster in `dir` under `process`
/// and waits until it answers a query; a free function so that
/// [`PostgresServer::restart`] can call it while its `process` is borrowed.
fn launch(
    process: &mut ManagedProcess,
    dir: &Path,
    port: u16,
    user: Option<(u32, u32)>,
    extra: &[String],
) -> Result<(), NotReady> {
    process.start(
        &mut server_command(dir, port, user, extra),
        dir,
        Duration::from_secs(20),
        Duration::from_millis(50),
        || try_psql(port, "SELECT 1").is_ok(),
    )
}

/// The `postgres` command line: durability off (a test cluster), the
/// socket and the log in the server's folder.
fn server_command(dir: &Path, port: u16, user: Option<(u32, u32)>, extra: &[String]) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG))
        .expect("postgres log");
    let mut command = Command::new(binary("postgres"));
    command
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string()])
        .arg("-k")
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=50"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

/// Runs SQL with `psql` against the server on `port` (unaligned, tuples
/// only); its output, or its error text.
fn try_psql(port: u16, sql: &str) -> Result<String, String> {
    let out = Command::new(binary("psql"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", "tokengate", "-d", "postgres", "-X", "-A", "-t"])
        .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "2")
        .env("PGPASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
