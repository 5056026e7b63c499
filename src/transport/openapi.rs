//! The OpenAPI document served at `/openapi.json`.
//!
//! `build.rs` derives it from the protos; a bound that depends on the
//! configuration (`tokengate.api.field_rules.maximum_setting`) is written
//! there as `x-tokengate-maximum-setting: "<section.key>"`, because the
//! build cannot know the value a deployment runs with. At start-up every
//! such bound gets the running configuration's value as its `maximum`, so
//! the document states what this server enforces: a request it calls valid
//! is never refused for its shape. The marker stays beside the bound, to
//! say which setting moves it.

use bytes::Bytes;
use serde_json::Value;
use tokengate_config::Config;

use crate::proto::OPENAPI_JSON;

/// The schema key naming the setting a bound follows (`build.rs` writes it).
pub const SETTING_KEY: &str = "x-tokengate-maximum-setting";

/// Why the document could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// The generated document is not JSON (a build bug).
    #[error("the generated OpenAPI document is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A proto names a setting the configuration does not have, or one
    /// that is not an integer.
    #[error("the OpenAPI document names {0:?}, which is not an integer setting")]
    UnknownSetting(String),
}

/// The document with every configured bound resolved by `setting`
/// (`section.key` → its integer value).
pub fn render(setting: impl Fn(&str) -> Option<i64>) -> Result<Bytes, OpenApiError> {
    let mut document: Value = serde_json::from_str(OPENAPI_JSON)?;
    resolve_settings(&mut document, &setting)?;
    Ok(Bytes::from(serde_json::to_vec(&document)?))
}

/// The document for a configuration: what `serve` answers.
pub fn for_config(config: &Config) -> Result<Bytes, OpenApiError> {
    render(|key| config.setting(key).and_then(|v| v.as_integer()))
}

fn resolve_settings(
    node: &mut Value,
    setting: &impl Fn(&str) -> Option<i64>,
) -> Result<(), OpenApiError> {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(key)) = map.get(SETTING_KEY) {
                let value =
                    setting(key).ok_or_else(|| OpenApiError::UnknownSetting(key.clone()))?;
                map.insert("maximum".to_owned(), value.into());
            }
            for child in map.values_mut() {
                resolve_settings(child, setting)?;
            }
        }
        Value::Array(items) => {
            for child in items {
                resolve_settings(child, setting)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue_field(document: &Bytes, field: &str) -> Value {
        let document: Value = serde_json::from_slice(document).expect("json");
        document["components"]["schemas"]["spaceone.api.identity.v1.IssueTokenRequest"]
            ["properties"][field]
            .clone()
    }

    #[test]
    fn configured_bounds_take_the_running_values() {
        let document = render(|key| match key {
            "token.max_access_timeout" => Some(600),
            "token.refresh_ttl" => Some(3),
            _ => None,
        })
        .expect("document");
        let timeout = issue_field(&document, "timeout");
        assert_eq!(timeout["minimum"], 0);
        assert_eq!(timeout["maximum"], 600);
        assert_eq!(timeout[SETTING_KEY], "token.max_access_timeout");
        assert_eq!(issue_field(&document, "refresh_count")["maximum"], 3);
    }

    #[test]
    fn an_unknown_setting_is_an_error_not_an_unbounded_field() {
        let refused = render(|_| None).expect_err("no settings");
        assert!(
            matches!(refused, OpenApiError::UnknownSetting(_)),
            "{refused}"
        );
    }
}
