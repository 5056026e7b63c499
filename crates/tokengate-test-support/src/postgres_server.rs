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
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;

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
    child: Option<Child>,
    watchdog: Option<Child>,
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
            child: None,
            watchdog: None,
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

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("postgres log");
        let mut command = Command::new(binary("postgres"));
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=50"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        let child = command.spawn().expect("spawn postgres");
        self.watchdog = Some(crate::watchdog::spawn_watchdog(
            "postgres",
            child.id(),
            self.dir.path(),
        ));
        self.child = Some(child);
        self.wait_ready()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.stop_watchdog();
                self.child = None;
                return Err(format!("postgres exited ({status}): {}", self.log()));
            }
            if self.try_psql("SELECT 1").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("postgres did not become ready: {}", self.log()))
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
        let out = Command::new(binary("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
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
        self.stop_watchdog();
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same port, with its data.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("postgres restart failed: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop_watchdog();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
