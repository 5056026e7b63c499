//! `[log]`: how log lines are written and which are.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (readable) or `json`.
    #[serde(deserialize_with = "format")]
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `tokengate=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// The shape of a log line (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines: `text`.
    Text,
    /// One JSON object per line: `json`.
    Json,
}

impl LogFormat {
    /// Every format.
    pub const ALL: [LogFormat; 2] = [LogFormat::Text, LogFormat::Json];

    /// Its name in the config file (and in serde).
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a log format name other than `text` or `json`.
#[derive(Debug, thiserror::Error)]
#[error("unknown log format {0:?} (expected text or json)")]
pub struct UnknownLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    /// Exactly an [`LogFormat::as_str`] name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownLogFormat(s.to_owned()))
    }
}

/// `log.format`: a name of [`LogFormat::as_str`]; anything else is
/// refused naming the key and the names it takes.
fn format<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LogFormat, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse()
        .map_err(|_| D::Error::custom("log.format must be \"text\" or \"json\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(text: &str) -> Result<LogConfig, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn format_by_name() {
        assert_eq!(log("").expect("default").format, LogFormat::Text);
        for format in LogFormat::ALL {
            let text = format!("format = {:?}", format.as_str());
            assert_eq!(log(&text).expect("known").format, format);
            assert_eq!(format.as_str().parse::<LogFormat>().ok(), Some(format));
            let value = toml::Value::try_from(LogConfig {
                format,
                level: "info".into(),
            })
            .expect("serialize");
            assert_eq!(
                value.get("format").and_then(|v| v.as_str()),
                Some(format.as_str())
            );
        }
    }

    #[test]
    fn unknown_format_names_the_key() {
        assert_eq!(
            log("format = \"xml\"").expect_err("xml"),
            "log.format must be \"text\" or \"json\""
        );
        assert_eq!(
            log("format = \"JSON\"").expect_err("case matters"),
            "log.format must be \"text\" or \"json\""
        );
        assert_eq!(
            log("format = 3").expect_err("not a string"),
            "invalid type: integer `3`, expected a string"
        );
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
