//! The calls the tests send, described once for every protocol: the gRPC
//! path and encoded message, the REST path and JSON body, and the headers.

use prost::Message as _;

pub use tokengate::proto::core_v1::{AuthenticationRequest, AuthenticationResponse};
pub use tokengate::proto::identity_v1::{IssueTokenRequest, TokenInfo};
pub use tokengate::proto::session_v1::{
    EndSessionRequest, EndSessionsResponse, IntrospectRequest, IntrospectResponse,
    ListSessionsResponse, RevokeUserRequest, SessionInfo,
};

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

/// A `tokengate.session.v1.Session` call: `method` (e.g. `end_others`),
/// its REST route (the method name, `_` as `-`), the request and its JSON,
/// the headers.
fn session_call(
    method: &str,
    message: Vec<u8>,
    json: String,
    headers: Vec<(&'static str, String)>,
) -> Call<'static> {
    Call {
        grpc_path: Box::leak(format!("/tokengate.session.v1.Session/{method}").into_boxed_str()),
        rest_path: Box::leak(
            format!("/tokengate/session/v1/{}", method.replace('_', "-")).into_boxed_str(),
        ),
        message,
        json,
        headers,
    }
}

/// `authorization: Bearer <token>`, or no header for an empty token.
fn bearer(token: &str) -> Vec<(&'static str, String)> {
    if token.is_empty() {
        Vec::new()
    } else {
        vec![("authorization", format!("Bearer {token}"))]
    }
}

/// `Session.revoke` (logout) with the given headers.
pub fn revoke_call(headers: Vec<(&'static str, String)>) -> Call<'static> {
    session_call("revoke", Vec::new(), String::new(), headers)
}

/// `Session.list` with an access token (none if empty).
pub fn list_sessions_call(access: &str) -> Call<'static> {
    session_call("list", Vec::new(), String::new(), bearer(access))
}

/// `Session.end` of one session id with an access token.
pub fn end_session_call(access: &str, session_id: &str) -> Call<'static> {
    let message = EndSessionRequest {
        session_id: session_id.to_owned(),
    };
    session_call(
        "end",
        message.encode_to_vec(),
        serde_json::json!({ "sessionId": session_id }).to_string(),
        bearer(access),
    )
}

/// `Session.end_others` with an access token.
pub fn end_others_call(access: &str) -> Call<'static> {
    session_call("end_others", Vec::new(), "{}".to_owned(), bearer(access))
}

/// `Session.revoke_user` of `user_id` with an access token.
pub fn revoke_user_call(access: &str, user_id: &str) -> Call<'static> {
    let message = RevokeUserRequest {
        user_id: user_id.to_owned(),
    };
    session_call(
        "revoke_user",
        message.encode_to_vec(),
        serde_json::json!({ "user_id": user_id }).to_string(),
        bearer(access),
    )
}

/// `Session.introspect` of `token`, the caller authenticated by
/// `authorization` (none if empty).
pub fn introspect_call(authorization: &str, token: &str) -> Call<'static> {
    let message = IntrospectRequest {
        token: token.to_owned(),
        token_type_hint: String::new(),
    };
    let headers = if authorization.is_empty() {
        Vec::new()
    } else {
        vec![("authorization", authorization.to_owned())]
    };
    session_call(
        "introspect",
        message.encode_to_vec(),
        serde_json::json!({ "token": token }).to_string(),
        headers,
    )
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

/// The introspection client the tests configure, and its secret.
pub const INTROSPECTION_CLIENT: (&str, &str) =
    ("gateway", "an-introspection-secret-of-some-length");

/// `Authorization: Basic base64(id:secret)` for an introspection client.
pub fn basic_auth(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// `Authorization: Basic` of [`INTROSPECTION_CLIENT`].
pub fn introspection_basic() -> String {
    basic_auth(INTROSPECTION_CLIENT.0, INTROSPECTION_CLIENT.1)
}

/// An `[introspection]` section allowing [`INTROSPECTION_CLIENT`] (its
/// secret digested as the README tells operators to, with `sha256sum`)
/// and the test directory's domain owner (`domain-a/root`) as a service
/// account.
pub fn introspection_config() -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(INTROSPECTION_CLIENT.1.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("sha256sum output");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let digest = text.split_whitespace().next().expect("digest");
    format!(
        "[introspection]\nclients = [\"{}:{digest}\"]\nservice_accounts = [\"domain-a/root\"]\n",
        INTROSPECTION_CLIENT.0
    )
}

/// A login to `domain-a` with the test password (`root` logs in as the
/// domain's owner): the issue call.
pub fn login_call(user: &str) -> Call<'static> {
    let user_type = if user == "root" { "DOMAIN_OWNER" } else { "" };
    let (req, json) = issue_request(
        "domain-a",
        user,
        Some(crate::test_server::PASSWORD),
        user_type,
        0,
        0,
    );
    issue_call(&req, json)
}
