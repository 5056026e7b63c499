//! A small self-contained service for driving the whole request path
//! in-process, without a listener or a config file: the benchmarks
//! (`benches/transport.rs`) and the fuzz targets (`fuzz/`) share it, so
//! both measure and attack the same stack `serve` builds.
//!
//! One domain ([`DOMAIN_ID`]) with one user ([`USER_ID`], password
//! [`PASSWORD`], bcrypt at the cheapest cost), EdDSA keys generated into a
//! folder the caller owns, refresh state in memory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokengate_config::Config;
use tokengate_core::{PasswordPool, TokenService, TokenSettings};
use tokengate_directory::{Directory, hash_bcrypt};
use tokengate_keys::{Algorithm, KeyDir};
use tokengate_store::MemoryStore;

use crate::stack::{self, AppService, StackSettings};

/// The fixture's one domain.
pub const DOMAIN_ID: &str = "d";
/// The fixture's one user.
pub const USER_ID: &str = "u";
/// The fixture user's password.
pub const PASSWORD: &str = "pw";
/// The one browser origin the fixture's CORS layer allows.
pub const ALLOWED_ORIGIN: &str = "http://localhost:3000";

/// The limits the fixture's stack is built with.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `limits.max_body_bytes`: largest body and gRPC message.
    pub max_body_bytes: usize,
    /// Deadline of a call without `grpc-timeout`.
    pub default_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            default_timeout: Duration::from_secs(10),
        }
    }
}

/// The fixture's configuration: every default. The core's settings and the
/// OpenAPI document's bounds both come from it, so they agree.
fn config() -> anyhow::Result<Config> {
    Config::from_toml(
        "directory = \"(fixture: in memory)\"\n",
        Path::new("."),
        std::iter::empty(),
    )
    .context("the fixture configuration")
}

/// The core service of the fixture: its keys are generated into `keys_dir`
/// (which must outlive nothing: they are loaded into memory at once).
pub fn core(keys_dir: &Path) -> anyhow::Result<Arc<TokenService>> {
    let hash = hash_bcrypt(PASSWORD, 4).context("hashing the fixture password")?;
    let directory = Directory::from_toml(&format!(
        "[[domain]]\ndomain_id = \"{DOMAIN_ID}\"\n\
         [[domain.user]]\nuser_id = \"{USER_ID}\"\npassword_hash = \"{hash}\"\n"
    ))
    .context("the fixture directory")?;
    let keys = KeyDir::new(keys_dir);
    keys.generate_missing([DOMAIN_ID], Algorithm::EdDSA)
        .context("generating the fixture keys")?;
    Ok(Arc::new(TokenService::new(
        directory,
        keys.load().context("loading the fixture keys")?,
        Arc::new(MemoryStore::new()),
        PasswordPool::new(1, 64),
        TokenSettings::from(&config()?),
    )))
}

/// The whole stack around [`core`], as [`stack::in_process`] builds it.
/// Must be called inside a Tokio runtime (the password pool and the
/// health reporter spawn onto it).
pub fn stack(keys_dir: &Path, limits: Limits) -> anyhow::Result<AppService> {
    stack::in_process(
        core(keys_dir)?,
        &StackSettings {
            allowed_origins: vec![ALLOWED_ORIGIN.into()],
            max_body_bytes: limits.max_body_bytes,
            default_timeout: limits.default_timeout,
            max_timeout: Duration::from_secs(60),
            client_ip_header: None,
        },
        crate::transport::openapi::for_config(&config()?)
            .context("completing the OpenAPI document")?,
    )
    .context("building the stack")
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn the_fixture_user_can_log_in_over_rest() {
        let keys = tempfile::tempdir().expect("tempdir");
        let service = stack(keys.path(), Limits::default()).expect("fixture");
        let body = format!(
            r#"{{"domain_id":"{DOMAIN_ID}","user_id":"{USER_ID}","credentials":{{"password":"{PASSWORD}"}}}}"#
        );
        let request = http::Request::post("/identity/v1/token/issue")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .expect("request");
        let response = service.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), http::StatusCode::OK);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert!(json["access_token"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            json["refresh_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
    }
}
