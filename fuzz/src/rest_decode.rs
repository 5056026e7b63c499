//! `rest_decode`: a REST body decoded into the method's input message
//! exactly as the generated REST handlers do it
//! (`tokengate::transport::rest::decode_json_body`: serde_json with its
//! 128-level nesting limit, serde_path_to_error, pbjson proto3 JSON).
//!
//! Input: first byte picks the message (`issue` → `IssueTokenRequest`,
//! `refresh` → `google.protobuf.Empty`, `get_public_key` →
//! `AuthenticationRequest`), the rest is the body.
//!
//! Properties: never panics; an all-whitespace body is the default message;
//! a refusal is INVALID_ARGUMENT `ERROR_INVALID_PARAMETER`; a decoded
//! message re-encodes to JSON that decodes to an equal message (floats
//! within [`FLOAT_ULPS`]).

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokengate::proto::core_v1::AuthenticationRequest;
use tokengate::proto::identity_v1::IssueTokenRequest;
use tokengate::transport::rest::decode_json_body;

/// Checks one input (see the module docs).
pub fn check(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => round_trip::<IssueTokenRequest>(body),
        1 => round_trip::<pbjson_types::Empty>(body),
        _ => round_trip::<AuthenticationRequest>(body),
    }
}

fn round_trip<T>(body: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + Debug + Default,
{
    match decode_json_body::<T>(body) {
        Ok(message) => {
            if body.iter().all(u8::is_ascii_whitespace) {
                assert_eq!(
                    message,
                    T::default(),
                    "an empty body is the default message"
                );
            }
            let json = serde_json::to_vec(&message).expect("a decoded message encodes");
            let again = decode_json_body::<T>(&json).unwrap_or_else(|status| {
                panic!(
                    "re-encoded JSON {:?} does not decode: {status:?}",
                    String::from_utf8_lossy(&json)
                )
            });
            if again != message {
                let a = serde_json::to_value(&again).expect("json");
                let m = serde_json::to_value(&message).expect("json");
                assert!(
                    json_eq(&a, &m),
                    "decode(encode(m)) != m for {:?}: {again:?} != {message:?}",
                    String::from_utf8_lossy(&json)
                );
            }
        }
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
            assert!(
                status
                    .message()
                    .starts_with("ERROR_INVALID_PARAMETER: Parameter is invalid. (key = "),
                "{status:?}"
            );
        }
    }
}

/// serde_json (built without its `float_roundtrip` feature, as in this
/// project) may parse a float 1 ULP off the nearest value, so floats may
/// come back this far off; everything else must be equal.
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
