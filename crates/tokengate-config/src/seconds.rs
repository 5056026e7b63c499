//! A duration the file gives in whole seconds (`access_timeout = 1200`) is
//! a [`Duration`] in Rust, so its unit travels with it:
//! `#[serde(with = "crate::seconds")]`. It reads and writes the same
//! integer as a `u64` field would, with the same errors for anything else.
//!
//! Keys in milliseconds stay integers: each ends in `_ms`, so the name
//! carries the unit.

use std::time::Duration;

use serde::{Deserialize as _, Deserializer, Serializer};

/// Writes whole seconds (what [`crate::Config::setting`] answers).
pub(crate) fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(value.as_secs())
}

/// Reads whole seconds: a non-negative integer.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    #[derive(Debug, Deserialize, Serialize)]
    struct Probe {
        #[serde(with = "super")]
        t: Duration,
    }

    #[test]
    fn whole_seconds_both_ways() {
        let probe: Probe = toml::from_str("t = 1200").expect("seconds");
        assert_eq!(probe.t, Duration::from_secs(1200));
        let value = toml::Value::try_from(&probe).expect("serialize");
        assert_eq!(value.get("t").and_then(toml::Value::as_integer), Some(1200));
    }

    #[test]
    fn errors_are_those_of_an_integer_field() {
        for (text, message) in [
            ("t = -1", "invalid value: integer `-1`, expected u64"),
            ("t = \"x\"", "invalid type: string \"x\", expected u64"),
            (
                "t = 1.5",
                "invalid type: floating point `1.5`, expected u64",
            ),
        ] {
            let error = toml::from_str::<Probe>(text).expect_err(text);
            assert_eq!(error.message(), message, "{text}");
        }
    }
}
