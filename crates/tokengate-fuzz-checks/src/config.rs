//! `config`: the configuration parser, `tokengate_config::Config::from_toml`
//! (TOML, `TOKENGATE_*` environment overrides, validation).
//!
//! Input: the config text, then optionally a NUL byte and environment
//! variables, one `NAME=value` per line (`TOKENGATE_` is prefixed when
//! missing).
//!
//! Properties: never panics; an accepted config validates again; an error
//! never echoes the password of a `store.redis_url` (toml errors carry the
//! parser's message only).

use std::path::Path;

use tokengate_config::Config;

/// Checks one input (see the module docs).
pub fn check(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let secrets = secrets(input);
    match parse(input) {
        Ok(config) => {
            config
                .validate()
                .expect("an accepted config validates again");
        }
        Err(error) => {
            let message = error.to_string();
            for secret in &secrets {
                if !message.contains(secret.as_str()) {
                    continue;
                }
                // The fuzzer can make a "password" out of the error's own
                // fixed text (`g: duplicate ke`): it is an echo only if the
                // error changes when the password does.
                let masked = input.replace(secret.as_str(), &"Z".repeat(secret.len()));
                let again = parse(&masked).err().map(|e| e.to_string());
                assert!(
                    again.is_some_and(|m| m.contains(secret.as_str())),
                    "the error {message:?} echoes the Redis password {secret:?}"
                );
            }
        }
    }
}

/// The config text before the first NUL, `NAME=value` environment lines
/// after it (`TOKENGATE_` added where missing), parsed as `serve` would.
fn parse(input: &str) -> Result<Config, tokengate_config::ConfigError> {
    let (text, env_text) = input.split_once('\0').unwrap_or((input, ""));
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            let name = if name.starts_with("TOKENGATE_") {
                name.to_owned()
            } else {
                format!("TOKENGATE_{name}")
            };
            (name, value.to_owned())
        })
        .collect();
    Config::from_toml(text, Path::new("/etc/tokengate"), env)
}

/// Passwords of `redis_url` values (`scheme://user:password@host`) on
/// `redis_url = ...` and `..._REDIS_URL=...` lines: 8+ characters appearing
/// once in the input, so that text echoed for another reason is no false
/// alarm.
pub fn secrets(input: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in input.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !key.trim().to_ascii_lowercase().ends_with("redis_url") {
            continue;
        }
        let Some((_, rest)) = value.split_once("://") else {
            continue;
        };
        let Some((userinfo, _)) = rest.split_once('@') else {
            continue;
        };
        let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
        if password.len() >= 8 && input.matches(password).count() == 1 {
            out.push(password.to_owned());
        }
    }
    out
}
