//! `tokengate serve` with a test config and directory, in a private
//! folder: it listens on `127.0.0.1:0` and the test reads the port it got
//! from its log ("serving gRPC, gRPC-Web and REST on one port",
//! `listen=…`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password of every test user.
pub const PASSWORD: &str = "correct horse";

/// The directory every conformance test uses.
pub fn directory_toml(cost: u32) -> String {
    let h = tokengate_directory::hash_bcrypt(PASSWORD, cost).expect("hash");
    format!(
        r#"
[[domain]]
domain_id = "domain-a"
state = "ENABLED"

[[domain.user]]
user_id = "alice@example.com"
password_hash = "{h}"

[[domain.user]]
user_id = "bob@example.com"
password_hash = "{h}"
state = "DISABLED"

[[domain.user]]
user_id = "robot"
password_hash = "{h}"
user_type = "API_USER"

[[domain.owner]]
owner_id = "root"
password_hash = "{h}"

[[domain]]
domain_id = "domain-off"
state = "DISABLED"

[[domain.user]]
user_id = "carol@example.com"
password_hash = "{h}"
"#
    )
}

/// [`directory_toml`]'s domains, users and owners as SQL for a migrated
/// PostgreSQL directory.
pub fn directory_sql(cost: u32) -> String {
    let h = tokengate_directory::hash_bcrypt(PASSWORD, cost).expect("hash");
    format!(
        "INSERT INTO tokengate.domains (domain_id, state) VALUES \
           ('domain-a', 'ENABLED'), ('domain-off', 'DISABLED'); \
         INSERT INTO tokengate.users (domain_id, user_id, password_hash, state, user_type) VALUES \
           ('domain-a', 'alice@example.com', '{h}', 'ENABLED', 'USER'), \
           ('domain-a', 'bob@example.com', '{h}', 'DISABLED', 'USER'), \
           ('domain-a', 'robot', '{h}', 'ENABLED', 'API_USER'), \
           ('domain-off', 'carol@example.com', '{h}', 'ENABLED', 'USER'); \
         INSERT INTO tokengate.owners (domain_id, owner_id, password_hash) VALUES \
           ('domain-a', 'root', '{h}');"
    )
}

/// Runs the tokengate binary with `args` (`--config` is added when
/// `config` is given) and `stdin` on its standard input.
pub fn tokengate_cli(config: Option<&Path>, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut command = Command::new(crate::locate::tokengate_binary());
    command.args(args);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut child = command
        .env_remove("TOKENGATE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tokengate");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("tokengate output")
}

/// A config file for commands against `postgres`, written into `dir`;
/// the password in a `postgres.password_file` beside it.
pub fn postgres_cli_config(
    dir: &Path,
    postgres: &crate::postgres_server::PostgresServer,
) -> PathBuf {
    let path = dir.join("cli.toml");
    std::fs::write(
        dir.join("pgpass"),
        format!("{}\n", crate::postgres_server::PASSWORD),
    )
    .expect("write password file");
    let config = format!(
        "directory = {:?}\n[keys]\ndir = \"keys\"\n[postgres]\npassword_file = \"pgpass\"\n",
        postgres.url()
    );
    std::fs::write(&path, config).expect("write cli config");
    path
}

/// Options for a test server.
pub struct ServerOptions {
    /// Extra TOML appended to the config.
    pub extra_config: String,
    /// bcrypt cost of the directory's hashes.
    pub bcrypt_cost: u32,
    /// Key algorithm.
    pub algorithm: &'static str,
    /// Environment overrides (`TOKENGATE_*`).
    pub env: Vec<(String, String)>,
    /// Use this keys folder instead of a private one (instances sharing keys).
    pub keys_dir: Option<PathBuf>,
    /// The directory file's text (default: [`directory_toml`]).
    pub directory: Option<String>,
}

/// The conformance tables fail many logins on purpose: raise the lockout
/// limits unless a test sets its own.
pub fn default_test_env() -> Vec<(String, String)> {
    vec![
        (
            "TOKENGATE_LIMITS_LOGIN_FAILURES_PER_USER".to_owned(),
            "1000000".to_owned(),
        ),
        (
            "TOKENGATE_LIMITS_LOGIN_FAILURES_PER_IP".to_owned(),
            "1000000".to_owned(),
        ),
    ]
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            extra_config: String::new(),
            bcrypt_cost: 4,
            algorithm: "EdDSA",
            env: default_test_env(),
            keys_dir: None,
            directory: None,
        }
    }
}

/// The message of the log line that names the address tokengate listens
/// on (its `listen` field).
pub const LISTENING_MESSAGE: &str = "serving gRPC, gRPC-Web and REST on one port";

/// The address in a [`LISTENING_MESSAGE`] log line, JSON or text; `None`
/// for any other line.
pub fn listen_address(line: &str) -> Option<SocketAddr> {
    if let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) {
        return (entry["message"] == LISTENING_MESSAGE)
            .then(|| entry["listen"].as_str()?.parse().ok())?;
    }
    let (_, fields) = line.split_once(LISTENING_MESSAGE)?;
    let (_, rest) = fields.split_once("listen=")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A running `tokengate serve` process with its own config folder, killed
/// on drop.
pub struct TestServer {
    /// The address it listens on (from its log).
    pub addr: SocketAddr,
    /// The process.
    pub child: Child,
    /// Its folder: config, directory, keys (unless shared), logs.
    pub dir: tempfile::TempDir,
    /// The file its stderr (the log) goes to.
    pub stderr_log: PathBuf,
}

impl TestServer {
    /// A server with the default [`ServerOptions`].
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// A server with these options; returns once it logged its address
    /// (panics with its log if it exits or takes more than 30 s).
    pub fn start_with(options: ServerOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let directory = options
            .directory
            .clone()
            .unwrap_or_else(|| directory_toml(options.bcrypt_cost));
        std::fs::write(dir.path().join("users.toml"), directory).expect("write directory");
        // Port 0: the server picks a free port and logs it. A port picked
        // here and bound by the server later could be taken in between by
        // another test's server or client socket (CI saw a test talk to a
        // port nobody listened on any more).
        let config = format!(
            "listen = \"127.0.0.1:0\"\ndirectory = \"users.toml\"\n[keys]\ndir = {:?}\nalgorithm = \"{}\"\n[cors]\nallowed_origins = [\"http://localhost:3000\"]\n[log]\nformat = \"json\"\nlevel = \"info\"\n{}",
            options.keys_dir.as_deref().unwrap_or(Path::new("keys")),
            options.algorithm,
            options.extra_config
        );
        let config_path = dir.path().join("tokengate.toml");
        std::fs::write(&config_path, config).expect("write config");
        let stderr_log = dir.path().join("stderr.log");
        let child = Command::new(crate::locate::tokengate_binary())
            .args(["serve", "--config"])
            .arg(&config_path)
            .env_remove("TOKENGATE_CONFIG")
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_log).expect("log file"))
            .spawn()
            .expect("spawn tokengate");
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            dir,
            stderr_log,
        };
        server.addr = server.wait_listening();
        server
    }

    /// A server whose directory is `postgres`, migrated (`tokengate
    /// directory migrate`) and seeded with [`directory_sql`].
    pub fn start_postgres(
        postgres: &crate::postgres_server::PostgresServer,
        mut options: ServerOptions,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = postgres_cli_config(dir.path(), postgres);
        let out = tokengate_cli(Some(&config), &["directory", "migrate"], "");
        assert!(
            out.status.success(),
            "migrate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        postgres.psql(&directory_sql(options.bcrypt_cost));
        options.env.extend(postgres.server_env());
        Self::start_with(options)
    }

    /// A server whose directory is `ldap` (its tree: the conformance
    /// directory; the `[ldap]` section of
    /// [`ldap_config_toml`](crate::ldap_server::ldap_config_toml)).
    pub fn start_ldap(ldap: &crate::ldap_server::LdapServer, mut options: ServerOptions) -> Self {
        options.extra_config.push('\n');
        options
            .extra_config
            .push_str(&crate::ldap_server::ldap_config_toml());
        options.env.extend(ldap.server_env());
        Self::start_with(options)
    }

    /// Its config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("tokengate.toml")
    }

    /// This server's keys folder.
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// A file in its folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Waits for the server's [`LISTENING_MESSAGE`] log line (JSON or
    /// text) and returns the address it names.
    fn wait_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let listening = self.logs().lines().find_map(listen_address);
            if let Some(addr) = listening {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tokengate exited ({status}): {}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("tokengate did not start: {}", self.logs());
    }

    /// Its log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// The status `/readyz` answers now.
    pub async fn readyz(&self) -> u16 {
        reqwest::get(self.url("/readyz"))
            .await
            .expect("readyz")
            .status()
            .as_u16()
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// This server's /metrics page (Prometheus text format).
    pub async fn metrics_text(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of the Prometheus sample `series` (a name, with its labels
    /// if it has any) on this server's /metrics; 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        self.metrics_text()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Sends a signal (a `kill` name: `TERM`, `HUP`, ...) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
