//! The environment overlay: `TOKENGATE_<KEY>` sets a top-level key and
//! `TOKENGATE_<SECTION>_<KEY>` one key of a section, over what the file
//! says, before anything is typed or validated (so an override is checked
//! exactly as the file's own value would be).

use serde::Deserialize;

use crate::ConfigError;
use crate::config::SECTIONS;

/// Applies every `TOKENGATE_*` variable of `env` to the file's `table`.
/// Values parse as TOML (numbers, booleans, arrays) and fall back to strings.
pub(crate) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (var, raw) in env {
        let Some(name) = var.strip_prefix("TOKENGATE_") else {
            continue;
        };
        // TOKENGATE_CONFIG names the file; TOKENGATE_PORT* and
        // TOKENGATE_SERVICE_* are Kubernetes service links for a Service
        // called "tokengate", not settings.
        if name == "CONFIG"
            || name == "PORT"
            || name.starts_with("PORT_")
            || name.starts_with("SERVICE_")
        {
            continue;
        }
        let name = name.to_ascii_lowercase();
        let value = if VERBATIM.contains(&name.as_str()) {
            toml::Value::String(raw)
        } else {
            parse_env_value(&raw)
        };
        let section = SECTIONS.iter().find(|s| {
            name.strip_prefix(**s)
                .is_some_and(|rest| rest.starts_with('_'))
        });
        match section {
            Some(section) => {
                let key = name[section.len() + 1..].to_owned();
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(sub) = entry.as_table_mut() else {
                    return Err(ConfigError::Env {
                        var,
                        reason: format!("[{section}] is not a table in the config file"),
                    });
                };
                sub.insert(key, value);
            }
            None => {
                table.insert(name, value);
            }
        }
    }
    Ok(())
}

/// Settings whose variables are taken as the string they are, never as
/// TOML: credentials, which may look like a number or a quoted string.
const VERBATIM: [&str; 6] = [
    "directory",
    "ldap_bind_password",
    "postgres_password",
    "store_redis_url",
    "store_sentinel_username",
    "store_sentinel_password",
];

/// A variable's value as a TOML value (`60`, `true`, `["a", "b"]`), or as
/// the string it is when it is not one (`redis://…`, `EdDSA`).
fn parse_env_value(raw: &str) -> toml::Value {
    #[derive(Deserialize)]
    struct Probe {
        v: toml::Value,
    }
    match toml::from_str::<Probe>(&format!("v = {raw}")) {
        Ok(p) => p.v,
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(file: &str, env: &[(&str, &str)]) -> Result<toml::Table, ConfigError> {
        let mut table: toml::Table = toml::from_str(file).expect("toml");
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        apply_env(&mut table, env).map(|()| table)
    }

    #[test]
    fn sections_and_top_level_keys() {
        let table = overlay(
            "[token]\nreuse_grace = 5\n",
            &[
                ("TOKENGATE_TOKEN_ACCESS_TIMEOUT", "60"),
                ("TOKENGATE_LISTEN", "127.0.0.1:7001"),
                ("TOKENGATE_STORE_REDIS_URL", "redis://127.0.0.1:7000/0"),
                ("TOKENGATE_KEYS_GENERATE_MISSING", "false"),
                ("TOKENGATE_STORE_SENTINEL_PASSWORD", "1234"),
                ("TOKENGATE_CORS_ALLOWED_ORIGINS", "[\"https://a.example\"]"),
            ],
        )
        .expect("overlay");
        let token = table["token"].as_table().expect("token");
        assert_eq!(token["access_timeout"].as_integer(), Some(60));
        assert_eq!(token["reuse_grace"].as_integer(), Some(5), "file kept");
        assert_eq!(table["listen"].as_str(), Some("127.0.0.1:7001"));
        assert_eq!(
            table["store"]["redis_url"].as_str(),
            Some("redis://127.0.0.1:7000/0")
        );
        assert_eq!(table["keys"]["generate_missing"].as_bool(), Some(false));
        assert_eq!(
            table["store"]["sentinel_password"].as_str(),
            Some("1234"),
            "a credential stays a string"
        );
        assert_eq!(
            table["cors"]["allowed_origins"][0].as_str(),
            Some("https://a.example")
        );
    }

    #[test]
    fn names_that_are_not_settings_are_skipped() {
        let table = overlay(
            "",
            &[
                ("TOKENGATE_CONFIG", "ignored"),
                ("TOKENGATE_PORT", "tcp://10.0.0.1:50051"),
                ("TOKENGATE_PORT_50051_TCP_ADDR", "10.0.0.1"),
                ("TOKENGATE_SERVICE_HOST", "10.0.0.1"),
                ("OTHER", "x"),
            ],
        )
        .expect("overlay");
        assert!(table.is_empty(), "{table:?}");
    }

    #[test]
    fn a_section_that_is_not_a_table() {
        let error =
            overlay("token = 1\n", &[("TOKENGATE_TOKEN_ISSUER", "x")]).expect_err("not a table");
        assert_eq!(
            error.to_string(),
            "environment variable TOKENGATE_TOKEN_ISSUER: [token] is not a table in the config file"
        );
    }
}
