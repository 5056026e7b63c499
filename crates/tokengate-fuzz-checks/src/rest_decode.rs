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
//! within [`FLOAT_ULPS`](crate::json_eq::FLOAT_ULPS)).

use crate::json_eq::json_eq;
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
