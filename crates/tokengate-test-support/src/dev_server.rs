//! `tokengate serve` in dev mode: no config, `--listen 127.0.0.1:0` (the
//! server picks its port), an in-memory store and a private data folder.
//! The address and the demo password are read back from the banner it
//! prints on stdout once it listens.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `tokengate serve` in dev mode, killed on drop.
pub struct DevServer {
    /// The address it listens on, as its banner names it.
    pub addr: SocketAddr,
    /// The banner, line by line (with their line ends) up to its last
    /// example call (`get_public_key`).
    pub banner: String,
    child: Child,
    data: tempfile::TempDir,
}

impl DevServer {
    /// Starts [`tokengate_binary`](crate::locate::tokengate_binary) in dev
    /// mode.
    pub fn start() -> Self {
        Self::start_with(&crate::locate::tokengate_binary(), &[])
    }

    /// Starts `binary` in dev mode with extra environment variables; waits
    /// (up to 60 s) for its banner and until its port accepts connections.
    pub fn start_with(binary: &Path, env: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env_remove("TOKENGATE_CONFIG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} serve: {e}", binary.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the banner, then keeps draining stdout so the server never
        // blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut banner = String::new();
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(sender) = &tx {
                    banner.push_str(&line);
                    if line.contains("get_public_key") {
                        let _ = sender.send(std::mem::take(&mut banner));
                        tx = None;
                    }
                }
                line.clear();
            }
        });
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            banner: String::new(),
            child,
            data,
        };
        server.banner = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(banner) => banner,
            Err(e) => {
                let status = server.child.try_wait().ok().flatten();
                panic!("no dev banner from tokengate ({e}; exit status {status:?})")
            }
        };
        server.addr = banner_address(&server.banner)
            .unwrap_or_else(|| panic!("no http:// address in the dev banner:\n{}", server.banner));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(server.addr).is_err() {
            assert!(Instant::now() < deadline, "tokengate did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The demo user's password, from the banner's `password:` line.
    pub fn password(&self) -> &str {
        self.banner
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("password:"))
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the dev banner's password line")
    }

    /// The data folder it was given (`--data-dir`).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address of the banner's example calls (`curl … http://ADDR/…`).
fn banner_address(banner: &str) -> Option<SocketAddr> {
    let (_, rest) = banner.split_once("http://")?;
    rest.split('/').next()?.parse().ok()
}
