//! The few protobuf messages of the wire contract, written by hand with
//! prost derive so that this crate depends on no tokengate code (it drives
//! the stock SpaceONE identity service as well).

use std::collections::BTreeMap;

use prost_types::{Struct, Value, value::Kind};

/// `spaceone.api.identity.v1.IssueTokenRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IssueTokenRequest {
    /// 1: the user (or owner) id.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// 2: the credentials, `{"password": "..."}`.
    #[prost(message, optional, tag = "2")]
    pub credentials: Option<Struct>,
    /// 3: `USER`, `DOMAIN_OWNER`, ... (empty: a directory user).
    #[prost(string, tag = "3")]
    pub user_type: String,
    /// 4: the domain.
    #[prost(string, tag = "4")]
    pub domain_id: String,
    /// 5: access-token lifetime in seconds (0: the server's default).
    #[prost(int32, tag = "5")]
    pub timeout: i32,
    /// 6: number of refreshes allowed (0: the server's default).
    #[prost(int32, tag = "6")]
    pub refresh_count: i32,
    /// 7: MFA code (unused here).
    #[prost(string, tag = "7")]
    pub verify_code: String,
}

/// `spaceone.api.identity.v1.TokenInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TokenInfo {
    /// 1: the access token (JWT).
    #[prost(string, tag = "1")]
    pub access_token: String,
    /// 2: the refresh token (JWT).
    #[prost(string, tag = "2")]
    pub refresh_token: String,
}

/// `spaceone.api.core.v1.AuthenticationRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthenticationRequest {
    /// 1: the domain whose public key is asked for.
    #[prost(string, tag = "1")]
    pub domain_id: String,
}

/// `spaceone.api.core.v1.AuthenticationResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthenticationResponse {
    /// 1: the domain.
    #[prost(string, tag = "1")]
    pub domain_id: String,
    /// 2: the JSON text of the domain's public JWK.
    #[prost(string, tag = "2")]
    pub public_key: String,
}

/// `{"password": password}` as a `google.protobuf.Struct`.
pub fn password_credentials(password: &str) -> Struct {
    let mut fields = BTreeMap::new();
    fields.insert(
        "password".to_owned(),
        Value {
            kind: Some(Kind::StringValue(password.to_owned())),
        },
    );
    Struct { fields }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn issue_request_encodes_the_contract_field_numbers() {
        let req = IssueTokenRequest {
            user_id: "u".into(),
            credentials: Some(password_credentials("p")),
            domain_id: "d".into(),
            ..Default::default()
        };
        let bytes = req.encode_to_vec();
        // field 1 (user_id), string "u"
        assert_eq!(&bytes[..3], &[0x0a, 1, b'u']);
        // field 2 (credentials) follows, field 4 (domain_id) ends it
        assert_eq!(bytes[3], 0x12);
        assert_eq!(&bytes[bytes.len() - 3..], &[0x22, 1, b'd']);
        let back = IssueTokenRequest::decode(bytes.as_slice()).expect("decode");
        assert_eq!(back, req);
    }
}
