//! JSON equality for the round-trip properties of the `jwt` and
//! `rest_decode` targets: equal, except that floats may differ by
//! [`FLOAT_ULPS`].

/// Floats may come back this far off; everything else must be equal.
/// With serde_json's `float_roundtrip` (enabled in fuzz/ and at the root)
/// the round trip is exact; without it a parse could land 1-2 ULP off.
pub const FLOAT_ULPS: u64 = 1;

/// JSON equality with floats allowed [`FLOAT_ULPS`] apart.
pub fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => ulps(x, y) <= FLOAT_ULPS,
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// How many representable f64 lie between `a` and `b`.
fn ulps(a: f64, b: f64) -> u64 {
    fn ordered(x: f64) -> i128 {
        let bits = x.to_bits() as i64;
        i128::from(if bits < 0 { i64::MIN - bits } else { bits })
    }
    (ordered(a) - ordered(b))
        .unsigned_abs()
        .try_into()
        .unwrap_or(u64::MAX)
}
