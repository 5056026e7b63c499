//! The error contract of SPEC §2, identical on every protocol.
//!
//! gRPC (and gRPC-Web): the status code, the message `"<ERROR_CODE>: text"`
//! and `grpc-status-details-bin` with a google.rpc.Status carrying one
//! google.rpc.ErrorInfo. REST: that same google.rpc.Status as JSON (with the
//! ErrorInfo's `@type`), under the grpc-gateway HTTP status mapping.

use bytes::Bytes;
use http::{HeaderValue, StatusCode as HttpStatus};
use prost::Message as _;
use tokengate_core::{ErrorClass, TokenError};
use tonic::{Code, Status};

use crate::proto::google::rpc;

/// The `domain` of every ErrorInfo tokengate sends.
pub const ERROR_DOMAIN: &str = "identity.spaceone.dev";
const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// The gRPC code of a core status class.
pub fn grpc_code(status: ErrorClass) -> Code {
    match status {
        ErrorClass::InvalidArgument => Code::InvalidArgument,
        ErrorClass::Unauthenticated => Code::Unauthenticated,
        ErrorClass::PermissionDenied => Code::PermissionDenied,
        ErrorClass::ResourceExhausted => Code::ResourceExhausted,
        ErrorClass::Unavailable => Code::Unavailable,
        ErrorClass::Internal => Code::Internal,
        ErrorClass::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorClass::NotFound => Code::NotFound,
        ErrorClass::Unimplemented => Code::Unimplemented,
    }
}

/// A status with tokengate's message format and ErrorInfo details.
fn status_with_reason(code: Code, reason: &str, message: String) -> Status {
    let info = rpc::ErrorInfo {
        reason: reason.to_owned(),
        domain: ERROR_DOMAIN.to_owned(),
        metadata: Default::default(),
    };
    let details = rpc::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![pbjson_types::Any {
            type_url: ERROR_INFO_TYPE.to_owned(),
            value: Bytes::from(info.encode_to_vec()),
        }],
    };
    Status::with_details(code, message, Bytes::from(details.encode_to_vec()))
}

/// Converts a core error to a gRPC status.
pub fn to_status(err: &TokenError) -> Status {
    let mut status = status_with_reason(grpc_code(err.status()), err.code(), err.to_string());
    if let Some(secs) = err.retry_after_secs()
        && let Ok(value) = secs.to_string().parse()
    {
        status.metadata_mut().insert("retry-after", value);
    }
    status
}

/// The HTTP status of a core error over REST: grpc-gateway's mapping of its
/// gRPC code, except where HTTP has a more exact answer for it (413 for a
/// body too large rather than 429, 405 for a known path asked with another
/// method rather than 501).
pub fn http_status_of(err: &TokenError) -> HttpStatus {
    match err {
        TokenError::RequestTooLarge { .. } => HttpStatus::PAYLOAD_TOO_LARGE,
        TokenError::MethodNotAllowed { .. } => HttpStatus::METHOD_NOT_ALLOWED,
        _ => http_status(grpc_code(err.status())),
    }
}

/// The REST answer to a core error (see [`rest_error_with_http`]).
pub fn rest_error_of(err: &TokenError) -> http::Response<axum::body::Body> {
    rest_error_with_http(&to_status(err), http_status_of(err))
}

/// grpc-gateway's HTTP status for a gRPC code.
pub fn http_status(code: Code) -> HttpStatus {
    match code {
        Code::Ok => HttpStatus::OK,
        Code::Cancelled => HttpStatus::from_u16(499).unwrap_or(HttpStatus::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            HttpStatus::BAD_REQUEST
        }
        Code::DeadlineExceeded => HttpStatus::GATEWAY_TIMEOUT,
        Code::NotFound => HttpStatus::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => HttpStatus::CONFLICT,
        Code::PermissionDenied => HttpStatus::FORBIDDEN,
        Code::Unauthenticated => HttpStatus::UNAUTHORIZED,
        Code::ResourceExhausted => HttpStatus::TOO_MANY_REQUESTS,
        Code::Unimplemented => HttpStatus::NOT_IMPLEMENTED,
        Code::Unavailable => HttpStatus::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => HttpStatus::INTERNAL_SERVER_ERROR,
    }
}

/// The google.rpc.Status JSON of a status: `{"code", "message", "details"}`
/// with each ErrorInfo rendered with its `@type` (pbjson cannot render Any).
pub fn status_json(status: &Status) -> serde_json::Value {
    let mut details = Vec::new();
    if let Ok(decoded) = rpc::Status::decode(status.details()) {
        for any in decoded.details {
            if any.type_url == ERROR_INFO_TYPE
                && let Ok(info) = rpc::ErrorInfo::decode(any.value.as_ref())
            {
                let mut json = serde_json::to_value(&info).unwrap_or_default();
                if let Some(map) = json.as_object_mut() {
                    map.insert("@type".to_owned(), ERROR_INFO_TYPE.into());
                }
                details.push(json);
            }
        }
    }
    serde_json::json!({
        "code": status.code() as i32,
        "message": status.message(),
        "details": details,
    })
}

/// A REST error response for a status: JSON body, mapped HTTP status,
/// `WWW-Authenticate` on 401, `Retry-After` where the status carries one.
pub fn rest_error(status: &Status) -> http::Response<axum::body::Body> {
    rest_error_with_http(status, http_status(status.code()))
}

/// Like [`rest_error`], with an explicit HTTP status.
fn rest_error_with_http(status: &Status, http: HttpStatus) -> http::Response<axum::body::Body> {
    let body = serde_json::to_vec(&status_json(status)).unwrap_or_default();
    let mut response = http::Response::new(axum::body::Body::from(body));
    *response.status_mut() = http;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if http == HttpStatus::UNAUTHORIZED {
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tokengate\""),
        );
    }
    if let Some(retry) = status.metadata().get("retry-after")
        && let Ok(value) = HeaderValue::from_bytes(retry.as_encoded_bytes())
    {
        headers.insert(http::header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_error_info_with_type() {
        let status = to_status(&TokenError::InvalidCredentials);
        assert_eq!(status.code(), Code::Unauthenticated);
        let json = status_json(&status);
        assert_eq!(json["code"], 16);
        assert_eq!(
            json["message"],
            "ERROR_INVALID_CREDENTIALS: Invalid credentials provided."
        );
        assert_eq!(json["details"][0]["@type"], ERROR_INFO_TYPE);
        assert_eq!(json["details"][0]["reason"], "ERROR_INVALID_CREDENTIALS");
        let response = rest_error(&status);
        assert_eq!(response.status(), HttpStatus::UNAUTHORIZED);
        assert!(
            response
                .headers()
                .contains_key(http::header::WWW_AUTHENTICATE)
        );
    }
}
