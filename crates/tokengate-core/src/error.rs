//! Every error tokengate answers, on every protocol, in one catalog: its
//! SpaceONE code, exact text and class. The token rules' errors come from
//! the core; the transport-level ones (a request too large, a deadline, an
//! unknown route or method, a handler that panicked) are raised by the
//! transports but written here, so every text a client can see is in one
//! table.

use std::borrow::Cow;

/// The class of an error, named after the gRPC status codes. Transports map
/// it to a gRPC code or an HTTP status; it is neither, hence its own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Bad input (gRPC 3, HTTP 400).
    InvalidArgument,
    /// Not logged in / bad credentials (gRPC 16, HTTP 401).
    Unauthenticated,
    /// Not allowed (gRPC 7, HTTP 403).
    PermissionDenied,
    /// Too many attempts or too busy (gRPC 8, HTTP 429).
    ResourceExhausted,
    /// A dependency is down; retry (gRPC 14, HTTP 503).
    Unavailable,
    /// A bug or broken deployment (gRPC 13, HTTP 500).
    Internal,
    /// The call's deadline passed (gRPC 4, HTTP 504).
    DeadlineExceeded,
    /// No such route (gRPC 5, HTTP 404).
    NotFound,
    /// No such method (gRPC 12, HTTP 501; 405 for a known path).
    Unimplemented,
}

/// Every error tokengate answers. `Display` is the wire message:
/// `"<ERROR_CODE>: <text>"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// A required request field is missing.
    #[error("ERROR_REQUIRED_PARAMETER: Required parameter. (key = {key})")]
    RequiredParameter {
        /// The field.
        key: &'static str,
    },
    /// A request field has a value out of range.
    #[error("ERROR_INVALID_PARAMETER: Parameter is invalid. (key = {key}, reason = {reason})")]
    InvalidParameter {
        /// The field (a JSON path for a malformed REST body).
        key: Cow<'static, str>,
        /// Why.
        reason: String,
    },
    /// An unknown domain (or, at refresh, a principal that is gone).
    #[error("ERROR_NOT_FOUND: Value not found. ({key} = {value})")]
    NotFound {
        /// `domain_id` or `user_id`.
        key: &'static str,
        /// The value looked up.
        value: String,
    },
    /// The domain is disabled.
    #[error("ERROR_DOMAIN_STATE: Domain is disabled (domain_id = {domain_id})")]
    DomainState {
        /// The domain.
        domain_id: String,
    },
    /// Unknown user or wrong password (indistinguishable by design).
    #[error(
        "ERROR_AUTHENTICATION_FAILURE: A user \"{user_id}\" is not exist or password is not correct."
    )]
    AuthenticationFailure {
        /// The user id as given.
        user_id: String,
    },
    /// The credentials carry no password.
    #[error("ERROR_INVALID_CREDENTIALS: Invalid credentials provided.")]
    InvalidCredentials,
    /// API users log in with API keys, not passwords.
    #[error(
        "ERROR_NOT_ALLOWED_ISSUE_TOKEN_API_USER: API_USER are not allowed to issue tokens. (user_id = {user_id})"
    )]
    ApiUserNotAllowed {
        /// The user id.
        user_id: String,
    },
    /// The user is disabled or pending.
    #[error("ERROR_USER_STATUS_CHECK_FAILURE: A user \"{user_id}\" status is not ENABLED.")]
    UserStatus {
        /// The user id.
        user_id: String,
    },
    /// `refresh_count` above the configured maximum.
    #[error(
        "ERROR_MAX_REFRESH_COUNT: The maximum refresh count has been exceeded. (max_refresh_count = {max})"
    )]
    MaxRefreshCount {
        /// The configured maximum.
        max: u32,
    },
    /// The refresh token has no refreshes left.
    #[error("ERROR_REFRESH_COUNT: The refresh count is exhausted.")]
    RefreshCountExhausted,
    /// No, spent, revoked or otherwise unusable refresh token.
    #[error("ERROR_INVALID_REFRESH_TOKEN: Refresh token is invalid or expired.")]
    InvalidRefreshToken,
    /// The refresh token is not a JWT.
    #[error("ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Cannot decode token.)")]
    CannotDecodeToken,
    /// The refresh token names no domain.
    #[error(
        "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Empty domain_id provided.)"
    )]
    EmptyDomainId,
    /// Signature, algorithm, key or expiry check failed.
    #[error(
        "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Token validation failed.)"
    )]
    TokenValidationFailed,
    /// A session call without a token.
    #[error("ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Empty token provided.)")]
    EmptyToken,
    /// A session call with an access token whose session has ended
    /// (logged out, ended elsewhere or by an owner, revoked).
    #[error("ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Session has ended.)")]
    SessionEnded,
    /// An introspection caller that is no configured client or service
    /// account (or none at all).
    #[error(
        "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Introspection needs a configured client or service account.)"
    )]
    IntrospectionUnauthenticated,
    /// The caller is authenticated but may not do this (an owner-only
    /// call by a user, introspection by an account not configured for it).
    #[error("ERROR_PERMISSION_DENIED: Permission denied.")]
    PermissionDenied,
    /// Too many failed logins; retry after the delay.
    #[error("ERROR_LOGIN_LOCKED: Too many failed logins. Try again in {retry_after_secs} seconds.")]
    LoginLocked {
        /// Seconds until the window passes.
        retry_after_secs: u64,
    },
    /// All password workers are busy and the queue is full.
    #[error("ERROR_TOO_MANY_REQUESTS: The server is busy. Try again later.")]
    Busy,
    /// The refresh-token store is unreachable.
    #[error("ERROR_UNAVAILABLE: The token store is unavailable. Try again later.")]
    StoreUnavailable,
    /// The user directory (a database) is unreachable: its snapshot may be
    /// stale.
    #[error("ERROR_UNAVAILABLE: The user directory is unavailable. Try again later.")]
    DirectoryUnavailable,
    /// A deployment problem (e.g. a domain without signing keys).
    #[error("ERROR_INTERNAL_API: Internal error. ({detail})")]
    Internal {
        /// A short, secret-free description.
        detail: &'static str,
    },
    /// A request handler panicked (the panic itself stays in the log).
    #[error("ERROR_INTERNAL_API: Internal error.")]
    Panicked,
    /// A request body or gRPC message above `limits.max_body_bytes`.
    #[error("ERROR_REQUEST_TOO_LARGE: Request is too large. (max_body_bytes = {max_body_bytes})")]
    RequestTooLarge {
        /// The limit.
        max_body_bytes: usize,
    },
    /// The call's deadline (its `grpc-timeout`, or the server's default)
    /// passed before the answer.
    #[error("ERROR_DEADLINE_EXCEEDED: Deadline exceeded.")]
    DeadlineExceeded,
    /// A REST path no route serves.
    #[error("ERROR_NOT_FOUND: Value not found. (path = {path})")]
    UnknownPath {
        /// The request path.
        path: String,
    },
    /// A REST route asked for with another HTTP method.
    #[error("ERROR_METHOD_NOT_ALLOWED: Method not allowed. (method = {method}, path = {path})")]
    MethodNotAllowed {
        /// The HTTP method used.
        method: String,
        /// The request path.
        path: String,
    },
    /// A gRPC method (or service) this server does not serve: says what it
    /// does serve, so a client that discovered a SpaceONE service through
    /// reflection learns which of its methods are here.
    #[error("ERROR_METHOD_NOT_FOUND: Method not found: {path}. This server provides: {provides}.")]
    MethodNotFound {
        /// The gRPC path asked for (cut to a bounded length).
        path: String,
        /// The methods served, comma-separated.
        provides: String,
    },
}

impl TokenError {
    /// The SpaceONE error code, e.g. `ERROR_NOT_FOUND`.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::RequiredParameter { .. } => "ERROR_REQUIRED_PARAMETER",
            TokenError::InvalidParameter { .. } => "ERROR_INVALID_PARAMETER",
            TokenError::NotFound { .. } => "ERROR_NOT_FOUND",
            TokenError::DomainState { .. } => "ERROR_DOMAIN_STATE",
            TokenError::AuthenticationFailure { .. } => "ERROR_AUTHENTICATION_FAILURE",
            TokenError::InvalidCredentials => "ERROR_INVALID_CREDENTIALS",
            TokenError::ApiUserNotAllowed { .. } => "ERROR_NOT_ALLOWED_ISSUE_TOKEN_API_USER",
            TokenError::UserStatus { .. } => "ERROR_USER_STATUS_CHECK_FAILURE",
            TokenError::MaxRefreshCount { .. } => "ERROR_MAX_REFRESH_COUNT",
            TokenError::RefreshCountExhausted => "ERROR_REFRESH_COUNT",
            TokenError::InvalidRefreshToken => "ERROR_INVALID_REFRESH_TOKEN",
            TokenError::CannotDecodeToken
            | TokenError::EmptyDomainId
            | TokenError::TokenValidationFailed
            | TokenError::EmptyToken
            | TokenError::SessionEnded
            | TokenError::IntrospectionUnauthenticated => "ERROR_AUTHENTICATE_FAILURE",
            TokenError::PermissionDenied => "ERROR_PERMISSION_DENIED",
            TokenError::LoginLocked { .. } => "ERROR_LOGIN_LOCKED",
            TokenError::Busy => "ERROR_TOO_MANY_REQUESTS",
            TokenError::StoreUnavailable | TokenError::DirectoryUnavailable => "ERROR_UNAVAILABLE",
            TokenError::Internal { .. } | TokenError::Panicked => "ERROR_INTERNAL_API",
            TokenError::RequestTooLarge { .. } => "ERROR_REQUEST_TOO_LARGE",
            TokenError::DeadlineExceeded => "ERROR_DEADLINE_EXCEEDED",
            TokenError::UnknownPath { .. } => "ERROR_NOT_FOUND",
            TokenError::MethodNotAllowed { .. } => "ERROR_METHOD_NOT_ALLOWED",
            TokenError::MethodNotFound { .. } => "ERROR_METHOD_NOT_FOUND",
        }
    }

    /// The status class: the gRPC code of SpaceONE's error class for the
    /// code (`ERROR_INVALID_ARGUMENT` → INVALID_ARGUMENT,
    /// `ERROR_AUTHENTICATE_FAILURE` and its subclasses → UNAUTHENTICATED).
    /// `ERROR_NOT_ALLOWED_ISSUE_TOKEN_API_USER` is one of those subclasses,
    /// so it is UNAUTHENTICATED (REST 401), not PERMISSION_DENIED.
    pub fn status(&self) -> ErrorClass {
        match self {
            TokenError::RequiredParameter { .. }
            | TokenError::InvalidParameter { .. }
            | TokenError::NotFound { .. } => ErrorClass::InvalidArgument,
            TokenError::DomainState { .. }
            | TokenError::AuthenticationFailure { .. }
            | TokenError::InvalidCredentials
            | TokenError::ApiUserNotAllowed { .. }
            | TokenError::UserStatus { .. }
            | TokenError::MaxRefreshCount { .. }
            | TokenError::RefreshCountExhausted
            | TokenError::InvalidRefreshToken
            | TokenError::CannotDecodeToken
            | TokenError::EmptyDomainId
            | TokenError::TokenValidationFailed
            | TokenError::EmptyToken
            | TokenError::SessionEnded
            | TokenError::IntrospectionUnauthenticated => ErrorClass::Unauthenticated,
            TokenError::PermissionDenied => ErrorClass::PermissionDenied,
            TokenError::LoginLocked { .. }
            | TokenError::Busy
            | TokenError::RequestTooLarge { .. } => ErrorClass::ResourceExhausted,
            TokenError::StoreUnavailable | TokenError::DirectoryUnavailable => {
                ErrorClass::Unavailable
            }
            TokenError::Internal { .. } | TokenError::Panicked => ErrorClass::Internal,
            TokenError::DeadlineExceeded => ErrorClass::DeadlineExceeded,
            TokenError::UnknownPath { .. } => ErrorClass::NotFound,
            TokenError::MethodNotAllowed { .. } | TokenError::MethodNotFound { .. } => {
                ErrorClass::Unimplemented
            }
        }
    }

    /// Seconds after which a retry may succeed, for 429/503 answers.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            TokenError::LoginLocked { retry_after_secs } => Some(*retry_after_secs),
            TokenError::Busy | TokenError::StoreUnavailable | TokenError::DirectoryUnavailable => {
                Some(1)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of SPEC §2's error table against the gRPC code of
    /// SpaceONE's error class for it (python-core's `ERROR_INVALID_ARGUMENT`
    /// and `ERROR_AUTHENTICATE_FAILURE` families), plus tokengate's own codes.
    #[test]
    fn every_code_has_its_spaceone_class() {
        use ErrorClass::*;
        let cases = [
            (
                TokenError::RequiredParameter { key: "domain_id" },
                InvalidArgument,
            ),
            (
                TokenError::InvalidParameter {
                    key: "timeout".into(),
                    reason: "r".into(),
                },
                InvalidArgument,
            ),
            (
                TokenError::NotFound {
                    key: "domain_id",
                    value: "d".into(),
                },
                InvalidArgument,
            ),
            (
                TokenError::DomainState {
                    domain_id: "d".into(),
                },
                Unauthenticated,
            ),
            (
                TokenError::AuthenticationFailure {
                    user_id: "u".into(),
                },
                Unauthenticated,
            ),
            (TokenError::InvalidCredentials, Unauthenticated),
            (
                TokenError::ApiUserNotAllowed {
                    user_id: "u".into(),
                },
                Unauthenticated,
            ),
            (
                TokenError::UserStatus {
                    user_id: "u".into(),
                },
                Unauthenticated,
            ),
            (TokenError::MaxRefreshCount { max: 18 }, Unauthenticated),
            (TokenError::RefreshCountExhausted, Unauthenticated),
            (TokenError::InvalidRefreshToken, Unauthenticated),
            (TokenError::CannotDecodeToken, Unauthenticated),
            (TokenError::EmptyDomainId, Unauthenticated),
            (TokenError::TokenValidationFailed, Unauthenticated),
            (TokenError::EmptyToken, Unauthenticated),
            (TokenError::SessionEnded, Unauthenticated),
            (TokenError::IntrospectionUnauthenticated, Unauthenticated),
            (TokenError::PermissionDenied, PermissionDenied),
            (
                TokenError::LoginLocked {
                    retry_after_secs: 1,
                },
                ResourceExhausted,
            ),
            (TokenError::Busy, ResourceExhausted),
            (TokenError::StoreUnavailable, Unavailable),
            (TokenError::DirectoryUnavailable, Unavailable),
            (TokenError::Internal { detail: "x" }, Internal),
            (TokenError::Panicked, Internal),
            (
                TokenError::RequestTooLarge { max_body_bytes: 1 },
                ResourceExhausted,
            ),
            (TokenError::DeadlineExceeded, DeadlineExceeded),
            (TokenError::UnknownPath { path: "/x".into() }, NotFound),
            (
                TokenError::MethodNotAllowed {
                    method: "GET".into(),
                    path: "/x".into(),
                },
                Unimplemented,
            ),
            (
                TokenError::MethodNotFound {
                    path: "/a.B/c".into(),
                    provides: "a.B/d".into(),
                },
                Unimplemented,
            ),
        ];
        for (err, class) in cases {
            assert_eq!(err.status(), class, "{}", err.code());
        }
    }

    #[test]
    fn exact_spaceone_texts() {
        let cases = [
            (
                TokenError::RequiredParameter { key: "domain_id" },
                "ERROR_REQUIRED_PARAMETER: Required parameter. (key = domain_id)",
            ),
            (
                TokenError::DomainState {
                    domain_id: "d".into(),
                },
                "ERROR_DOMAIN_STATE: Domain is disabled (domain_id = d)",
            ),
            (
                TokenError::MaxRefreshCount { max: 18 },
                "ERROR_MAX_REFRESH_COUNT: The maximum refresh count has been exceeded. (max_refresh_count = 18)",
            ),
            (
                TokenError::TokenValidationFailed,
                "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Token validation failed.)",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
            assert!(text.starts_with(err.code()));
        }
    }
}
