//! Dev mode (`tokengate serve` without a config): loopback listener,
//! in-memory store, keys in a local data folder, one demo domain with a user
//! and an owner whose password is printed once, and example calls ready to
//! paste.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokengate_config::Config;
use tokengate_directory::{Directory, hash_argon2id};

/// The demo domain.
pub const DEMO_DOMAIN: &str = "domain-dev";
/// The demo user.
pub const DEMO_USER: &str = "admin@example.com";
/// The demo domain's owner (`user_type` DOMAIN_OWNER, the same password):
/// what `Session.revoke_user` needs.
pub const DEMO_OWNER: &str = "owner";

/// A dev-mode configuration and directory; the password is new each start.
pub struct DevSetup {
    /// The configuration (defaults, keys under the data folder).
    pub config: Config,
    /// One domain with one user and its owner.
    pub directory: Directory,
    /// The demo user's password (shown once in the banner).
    pub password: String,
}

/// Builds the dev setup in `data_dir`.
pub fn setup(data_dir: &Path, listen: Option<SocketAddr>) -> anyhow::Result<DevSetup> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let password = random_password();
    let hash = hash_argon2id(&password).context("hashing the demo password")?;
    let directory = Directory::from_toml(&format!(
        "[[domain]]\ndomain_id = \"{DEMO_DOMAIN}\"\nstate = \"ENABLED\"\n\n[[domain.user]]\nuser_id = \"{DEMO_USER}\"\npassword_hash = \"{hash}\"\nstate = \"ENABLED\"\n\n[[domain.owner]]\nowner_id = \"{DEMO_OWNER}\"\npassword_hash = \"{hash}\"\n"
    ))?;
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051)));
    let config_text = format!(
        "listen = \"{listen}\"\ndirectory = \"(dev: in memory)\"\n[keys]\ndir = \"keys\"\n[cors]\nallowed_origins = [\"http://localhost:3000\", \"http://127.0.0.1:3000\", \"http://localhost:5173\", \"http://127.0.0.1:5173\"]\n[log]\nformat = \"text\"\n"
    );
    let config = Config::from_toml(&config_text, data_dir, std::env::vars())?;
    Ok(DevSetup {
        config,
        directory,
        password,
    })
}

/// 20 characters from an unambiguous alphabet (safe inside shell quotes).
fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    // getrandom failing means no OS entropy; rand's thread RNG would fail too.
    rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The start-up banner: credentials once, and example calls that work as printed.
pub fn banner(addr: SocketAddr, password: &str, data_dir: &Path) -> String {
    let base = format!("http://{addr}");
    let issue_body = format!(
        r#"{{"domain_id":"{DEMO_DOMAIN}","user_id":"{DEMO_USER}","credentials":{{"password":"{password}"}}}}"#
    );
    format!(
        r#"
tokengate dev mode — in-memory store, keys in {data}
  NOT FOR PRODUCTION: pass --config FILE (or TOKENGATE_CONFIG) for a real deployment.

  demo domain:   {DEMO_DOMAIN}
  demo user:     {DEMO_USER}
  demo owner:    {DEMO_OWNER}  (user_type DOMAIN_OWNER, the same password)
  password:      {password}        (new at every dev start; shown only here)

Try it (REST):
  curl -s -X POST {base}/identity/v1/token/issue -d '{issue_body}'
  RT=$(curl -s -X POST {base}/identity/v1/token/issue -d '{issue_body}' | sed -E 's/.*"refresh_token":"([^"]+)".*/\1/')
  curl -s -X POST {base}/identity/v1/token/refresh -H "Authorization: Bearer $RT"
  curl -s -X POST {base}/identity/v1/domain/get-public-key -d '{{"domain_id":"{DEMO_DOMAIN}"}}'
  curl -s {base}/.well-known/jwks.json

Try it (gRPC and gRPC-Web, with buf curl via reflection):
  npx --yes @bufbuild/buf curl --protocol grpc --http2-prior-knowledge -d '{issue_body}' {base}/spaceone.api.identity.v1.Token/issue
  npx --yes @bufbuild/buf curl --protocol grpcweb -d '{{"domain_id":"{DEMO_DOMAIN}"}}' {base}/spaceone.api.identity.v1.Domain/get_public_key
"#,
        data = data_dir.display(),
    )
}

/// The default data folder.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("tokengate-dev")
}
