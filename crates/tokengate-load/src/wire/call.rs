//! The calls of the contract ([`Call`]: get_public_key, issue, refresh,
//! and the health check) with their gRPC and REST paths, and what the
//! requests carry ([`Payload`]).

/// The three calls of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `Domain/get_public_key`.
    GetPublicKey,
    /// `Token/issue`.
    Issue,
    /// `Token/refresh`.
    Refresh,
    /// `GET /healthz` (plain HTTP whatever the protocol; 200 = success).
    Healthz,
}

/// How many kinds of call there are (the size of per-call tables).
pub(crate) const CALL_KINDS: usize = 4;

impl Call {
    /// The name in the report: `get_public_key`, `issue`, `refresh`.
    pub fn name(self) -> &'static str {
        match self {
            Call::GetPublicKey => "get_public_key",
            Call::Issue => "issue",
            Call::Refresh => "refresh",
            Call::Healthz => "healthz",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Call::GetPublicKey => 0,
            Call::Issue => 1,
            Call::Refresh => 2,
            Call::Healthz => 3,
        }
    }

    pub(super) fn grpc_path(self) -> &'static str {
        match self {
            Call::GetPublicKey => "/spaceone.api.identity.v1.Domain/get_public_key",
            Call::Issue => "/spaceone.api.identity.v1.Token/issue",
            Call::Refresh => "/spaceone.api.identity.v1.Token/refresh",
            Call::Healthz => "/healthz",
        }
    }

    pub(super) fn rest_path(self) -> &'static str {
        match self {
            Call::GetPublicKey => "/identity/v1/domain/get-public-key",
            Call::Issue => "/identity/v1/token/issue",
            Call::Refresh => "/identity/v1/token/refresh",
            Call::Healthz => "/healthz",
        }
    }
}

/// What the requests carry.
#[derive(Debug, Clone, Default)]
pub struct Payload {
    /// `domain_id` of every call.
    pub domain_id: String,
    /// `user_id` of issue.
    pub user_id: String,
    /// `credentials.password` of issue.
    pub password: String,
    /// `user_type` of issue (empty: not sent).
    pub user_type: String,
    /// `timeout` of issue (0: not sent).
    pub token_timeout: i32,
    /// `refresh_count` of issue (0: not sent).
    pub refresh_count: i32,
}
