//! How failed calls are told apart: a [`Failure`] is counted by its
//! [`ErrorKey`], the status (gRPC code name, `HTTP <status>`, or a
//! transport-side class) plus the SpaceONE error code that starts the
//! server's message, if one does.

use std::fmt;

use serde::Serialize;

/// An error class: the status (gRPC code name, `HTTP 401`, `TRANSPORT`, ...)
/// and the SpaceONE error code from the message prefix, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ErrorKey {
    /// gRPC code name (`UNAUTHENTICATED`), `HTTP <status>`, `TRANSPORT`,
    /// `CONNECT`, `TIMEOUT` or `BAD_RESPONSE`.
    pub status: String,
    /// The SpaceONE code (`ERROR_AUTHENTICATION_FAILURE`) when the message
    /// starts with one.
    pub code: Option<String>,
}

impl ErrorKey {
    /// A key without SpaceONE code.
    pub fn bare(status: impl Into<String>) -> Self {
        Self {
            status: status.into(),
            code: None,
        }
    }
}

impl fmt::Display for ErrorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} {}", self.status, code),
            None => f.write_str(&self.status),
        }
    }
}

/// A failed call: its class and the message the server gave.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The class errors are counted by.
    pub key: ErrorKey,
    /// The server's message (or the transport error), for the report's sample.
    pub message: String,
}

impl Failure {
    pub(crate) fn new(status: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            key: ErrorKey {
                status: status.into(),
                code: spaceone_code(&message),
            },
            message,
        }
    }
}

/// The gRPC status code names.
pub fn grpc_code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("GRPC_{code}"), |n| (*n).to_owned())
}

/// `ERROR_X` from `"ERROR_X: text"`.
pub fn spaceone_code(message: &str) -> Option<String> {
    let (code, _) = message.split_once(':')?;
    let code = code.trim();
    (code.starts_with("ERROR_")
        && code.len() > "ERROR_".len()
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
    .then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_messages() {
        assert_eq!(
            spaceone_code("ERROR_AUTHENTICATION_FAILURE: A user \"x\" is not exist").as_deref(),
            Some("ERROR_AUTHENTICATION_FAILURE")
        );
        assert_eq!(spaceone_code("ERROR_: x"), None);
        assert_eq!(spaceone_code("error: x"), None);
        assert_eq!(spaceone_code("no colon"), None);
        assert_eq!(grpc_code_name(16), "UNAUTHENTICATED");
        assert_eq!(grpc_code_name(42), "GRPC_42");
    }
}
