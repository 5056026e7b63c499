//! MongoDB Extended JSON v2 as `mongoexport` writes it: canonical or
//! relaxed mode, one document per line or one `--jsonArray` array.
//!
//! Documents are kept as [`serde_json::Value`]; the helpers here read the
//! typed wrappers (`$oid`, `$date`, `$binary`, `$numberInt`/`$numberLong`)
//! where a field needs them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// One document of an export, or why it could not be read.
#[derive(Debug)]
pub struct Record {
    /// Where it is: `line N` or `element N` (1-based).
    pub position: String,
    /// The document, or the parser's message (never the text itself).
    pub document: Result<Value, String>,
}

/// Splits an export into documents. A first non-blank `[` means
/// `--jsonArray` (one array, possibly pretty-printed); otherwise every
/// non-blank line is a document.
pub fn records(text: &str) -> Result<Vec<Record>, String> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('[') {
        let array: Vec<Value> = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a JSON array (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        return Ok(array
            .into_iter()
            .enumerate()
            .map(|(i, document)| Record {
                position: format!("element {}", i + 1),
                document: match document {
                    Value::Object(_) => Ok(document),
                    _ => Err("not a document".to_owned()),
                },
            })
            .collect());
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| Record {
            position: format!("line {}", i + 1),
            document: match serde_json::from_str::<Value>(line) {
                Ok(document @ Value::Object(_)) => Ok(document),
                Ok(_) => Err("not a document".to_owned()),
                Err(e) => Err(format!("not JSON (column {})", e.column())),
            },
        })
        .collect())
}

/// A string field.
pub fn string<'a>(document: &'a Value, field: &str) -> Option<&'a str> {
    document.get(field)?.as_str()
}

/// An ObjectId as its 24 hex digits (`{"$oid": "…"}`; a plain string is
/// taken as is).
pub fn object_id(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Object(map) => map.get("$oid")?.as_str(),
        _ => None,
    }
}

/// An integer: a JSON number (relaxed) or `{"$numberInt"|"$numberLong": "…"}`
/// (canonical).
pub fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::Object(map) => map
            .get("$numberLong")
            .or_else(|| map.get("$numberInt"))?
            .as_str()?
            .parse()
            .ok(),
        _ => None,
    }
}

/// A `$date` as milliseconds since the Unix epoch: canonical
/// `{"$date": {"$numberLong": "…"}}`, relaxed `{"$date": "<RFC 3339>"}`
/// (any number of fraction digits, `Z` or an offset), or a bare number.
pub fn date_millis(value: &Value) -> Option<i64> {
    let inner = value.as_object()?.get("$date")?;
    match inner {
        Value::String(s) => rfc3339_millis(s),
        other => integer(other),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as epoch milliseconds.
fn rfc3339_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = rest.get(1..)?.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The bytes of a `$binary`: v2 `{"$binary": {"base64": "…", "subType": "00"}}`
/// or the legacy `{"$binary": "…", "$type": "00"}`.
pub fn binary(value: &Value) -> Option<Vec<u8>> {
    let inner = value.as_object()?.get("$binary")?;
    let text = match inner {
        Value::String(s) => s.as_str(),
        Value::Object(map) => map.get("base64")?.as_str()?,
        _ => return None,
    };
    STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_and_arrays() {
        let lines = records("{\"a\":1}\n\n[1]\n{oops\n").expect("lines");
        assert_eq!(lines.len(), 3);
        assert!(lines[0].document.is_ok());
        assert_eq!(lines[1].position, "line 3");
        assert!(lines[1].document.is_err() && lines[2].document.is_err());
        let array = records("[\n  {\"a\": 1},\n  2\n]\n").expect("array");
        assert_eq!(array.len(), 2);
        assert!(array[0].document.is_ok() && array[1].document.is_err());
        assert!(records("[{\"a\":").is_err());
    }

    #[test]
    fn dates_in_both_modes() {
        let ms = 1_700_000_000_123;
        assert_eq!(
            date_millis(&json!({"$date": {"$numberLong": "1700000000123"}})),
            Some(ms)
        );
        assert_eq!(
            date_millis(&json!({"$date": "2023-11-14T22:13:20.123Z"})),
            Some(ms)
        );
        assert_eq!(
            date_millis(&json!({"$date": "2023-11-14T22:13:20.123456Z"})),
            Some(ms)
        );
        assert_eq!(
            date_millis(&json!({"$date": "2023-11-14T22:13:20.1Z"})),
            Some(ms - 23)
        );
        assert_eq!(
            date_millis(&json!({"$date": "2023-11-15T00:13:20.123+02:00"})),
            Some(ms)
        );
        assert_eq!(
            date_millis(&json!({"$date": "2023-11-14T22:13:20Z"})),
            Some(ms - 123)
        );
        assert_eq!(date_millis(&json!({"$date": "yesterday"})), None);
        assert_eq!(
            date_millis(&json!({"$date": "1969-12-31T23:59:59Z"})),
            Some(-1000)
        );
    }

    #[test]
    fn wrappers() {
        assert_eq!(object_id(&json!({"$oid": "65a1"})), Some("65a1"));
        assert_eq!(integer(&json!({"$numberInt": "7"})), Some(7));
        assert_eq!(integer(&json!(7)), Some(7));
        let v2 = json!({"$binary": {"base64": "JDJiJA==", "subType": "00"}});
        assert_eq!(binary(&v2), Some(b"$2b$".to_vec()));
        let legacy = json!({"$binary": "JDJiJA==", "$type": "00"});
        assert_eq!(binary(&legacy), Some(b"$2b$".to_vec()));
        assert_eq!(binary(&json!("JDJiJA==")), None);
    }
}
