//! The calls the tests send, described once for every protocol: the gRPC
//! path and encoded message, the REST path and JSON body, and the headers.

use prost::Message as _;

pub use tokengate::proto::core_v1::{AuthenticationRequest, AuthenticationResponse};
pub use tokengate::proto::identity_v1::{IssueTokenRequest, TokenInfo};

/// A unary call description, protocol-independent.
pub struct Call<'a> {
    /// `/package.Service/method`
    pub grpc_path: &'a str,
    /// REST path.
    pub rest_path: &'a str,
    /// The request message, encoded.
    pub message: Vec<u8>,
    /// The same request as JSON for REST.
    pub json: String,
    /// Extra headers / metadata.
    pub headers: Vec<(&'a str, String)>,
}

/// An issue call.
pub fn issue_call(req: &IssueTokenRequest, json: serde_json::Value) -> Call<'static> {
    Call {
        grpc_path: "/spaceone.api.identity.v1.Token/issue",
        rest_path: "/identity/v1/token/issue",
        message: req.encode_to_vec(),
        json: json.to_string(),
        headers: Vec::new(),
    }
}

/// A refresh call with the given headers.
pub fn refresh_call(headers: Vec<(&'static str, String)>) -> Call<'static> {
    Call {
        grpc_path: "/spaceone.api.identity.v1.Token/refresh",
        rest_path: "/identity/v1/token/refresh",
        message: Vec::new(),
        json: String::new(),
        headers,
    }
}

/// A get_public_key call.
pub fn public_key_call(domain_id: &str) -> Call<'static> {
    Call {
        grpc_path: "/spaceone.api.identity.v1.Domain/get_public_key",
        rest_path: "/identity/v1/domain/get-public-key",
        message: AuthenticationRequest {
            domain_id: domain_id.to_owned(),
        }
        .encode_to_vec(),
        json: serde_json::json!({ "domain_id": domain_id }).to_string(),
        headers: Vec::new(),
    }
}

/// Builds an IssueTokenRequest and its JSON twin (JSON uses camelCase names
/// half of the time to exercise both spellings).
pub fn issue_request(
    domain: &str,
    user: &str,
    password: Option<&str>,
    user_type: &str,
    timeout: i32,
    refresh_count: i32,
) -> (IssueTokenRequest, serde_json::Value) {
    use pbjson_types::{Struct, Value, value::Kind};
    let credentials = password.map(|p| {
        let mut s = Struct::default();
        if p != "<none>" {
            s.fields.insert(
                "password".to_owned(),
                Value {
                    kind: Some(Kind::StringValue(p.to_owned())),
                },
            );
        }
        s
    });
    let req = IssueTokenRequest {
        user_id: user.to_owned(),
        credentials: credentials.clone(),
        user_type: user_type.to_owned(),
        domain_id: domain.to_owned(),
        timeout,
        refresh_count,
        verify_code: String::new(),
    };
    let mut json = serde_json::Map::new();
    if !user.is_empty() {
        json.insert("user_id".into(), user.into());
    }
    if !domain.is_empty() {
        json.insert("domainId".into(), domain.into());
    }
    if !user_type.is_empty() {
        json.insert("user_type".into(), user_type.into());
    }
    if timeout != 0 {
        json.insert("timeout".into(), timeout.into());
    }
    if refresh_count != 0 {
        json.insert("refreshCount".into(), refresh_count.into());
    }
    if let Some(p) = password {
        if p == "<none>" {
            json.insert("credentials".into(), serde_json::json!({}));
        } else {
            json.insert("credentials".into(), serde_json::json!({ "password": p }));
        }
    }
    (req, serde_json::Value::Object(json))
}
