//! Requests and answers on each protocol: request bodies are built once,
//! answers are judged by grpc-status (gRPC, gRPC-Web) or the HTTP status
//! (REST), and errors are keyed by status name plus SpaceONE error code.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT,
};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;
use prost::Message as _;
use serde::Serialize;

use crate::error::LoadError;
use crate::proto::{AuthenticationRequest, IssueTokenRequest, TokenInfo, password_credentials};
use crate::protocol::{HttpVersion, Protocol};

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

    fn grpc_path(self) -> &'static str {
        match self {
            Call::GetPublicKey => "/spaceone.api.identity.v1.Domain/get_public_key",
            Call::Issue => "/spaceone.api.identity.v1.Token/issue",
            Call::Refresh => "/spaceone.api.identity.v1.Token/refresh",
            Call::Healthz => "/healthz",
        }
    }

    fn rest_path(self) -> &'static str {
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

/// The message of a successful answer: protobuf bytes (gRPC, gRPC-Web) or
/// JSON (REST).
pub type Answer = Bytes;

/// Builds requests and judges answers for one protocol and HTTP version.
#[derive(Debug, Clone)]
pub struct Wire {
    protocol: Protocol,
    version: HttpVersion,
    authority: HeaderValue,
    uris: [Uri; CALL_KINDS],
    bodies: [Bytes; CALL_KINDS],
    content_type: HeaderValue,
}

const USER_AGENT_VALUE: &str = concat!("tokengate-load/", env!("CARGO_PKG_VERSION"));

impl Wire {
    /// Prepares the three requests.
    pub fn new(
        protocol: Protocol,
        version: HttpVersion,
        authority: &str,
        prefix: &str,
        payload: &Payload,
    ) -> Result<Self, LoadError> {
        let authority_value =
            HeaderValue::from_str(authority).map_err(|_| LoadError::InvalidTarget {
                url: authority.to_owned(),
                why: "the authority is not a valid header value".into(),
            })?;
        let uri = |call: Call| -> Result<Uri, LoadError> {
            let path = match protocol {
                Protocol::Rest => call.rest_path(),
                _ => call.grpc_path(),
            };
            let text = match version {
                // HTTP/2 carries :scheme and :authority, taken from an absolute URI.
                HttpVersion::H2 => format!("http://{authority}{prefix}{path}"),
                // HTTP/1.1: origin-form request line plus a Host header.
                HttpVersion::H1 => format!("{prefix}{path}"),
            };
            text.parse().map_err(|_| LoadError::InvalidTarget {
                url: text.clone(),
                why: "not a valid request URI".into(),
            })
        };
        let uris = [
            uri(Call::GetPublicKey)?,
            uri(Call::Issue)?,
            uri(Call::Refresh)?,
            uri(Call::Healthz)?,
        ];
        let issue = IssueTokenRequest {
            user_id: payload.user_id.clone(),
            credentials: Some(password_credentials(&payload.password)),
            user_type: payload.user_type.clone(),
            domain_id: payload.domain_id.clone(),
            timeout: payload.token_timeout,
            refresh_count: payload.refresh_count,
            verify_code: String::new(),
        };
        let get_key = AuthenticationRequest {
            domain_id: payload.domain_id.clone(),
        };
        let bodies = match protocol {
            Protocol::Rest => {
                let mut issue_json = serde_json::json!({
                    "user_id": payload.user_id,
                    "domain_id": payload.domain_id,
                    "credentials": {"password": payload.password},
                });
                if !payload.user_type.is_empty() {
                    issue_json["user_type"] = payload.user_type.clone().into();
                }
                if payload.token_timeout != 0 {
                    issue_json["timeout"] = payload.token_timeout.into();
                }
                if payload.refresh_count != 0 {
                    issue_json["refresh_count"] = payload.refresh_count.into();
                }
                [
                    Bytes::from(serde_json::json!({"domain_id": payload.domain_id}).to_string()),
                    Bytes::from(issue_json.to_string()),
                    Bytes::from_static(b"{}"),
                    Bytes::new(),
                ]
            }
            _ => {
                let frames = [
                    grpc_frame(&get_key.encode_to_vec()),
                    grpc_frame(&issue.encode_to_vec()),
                    grpc_frame(&[]), // google.protobuf.Empty
                ];
                let [get_key, issue, refresh] = if protocol == Protocol::GrpcWebText {
                    frames.map(|f| Bytes::from(STANDARD.encode(&f)))
                } else {
                    frames
                };
                [get_key, issue, refresh, Bytes::new()]
            }
        };
        let content_type = HeaderValue::from_static(match protocol {
            Protocol::Grpc => "application/grpc",
            Protocol::GrpcWeb => "application/grpc-web+proto",
            Protocol::GrpcWebText => "application/grpc-web-text",
            Protocol::Rest => "application/json",
        });
        Ok(Self {
            protocol,
            version,
            authority: authority_value,
            uris,
            bodies,
            content_type,
        })
    }

    /// The request body of `call` (as sent: framed, base64 for text mode).
    pub fn body(&self, call: Call) -> Bytes {
        self.bodies[call.index()].clone()
    }

    /// The request for `call`; `token` is the refresh token of a refresh.
    pub fn request(
        &self,
        call: Call,
        token: Option<&str>,
    ) -> Result<Request<Full<Bytes>>, Failure> {
        let i = call.index();
        let mut req = Request::new(Full::new(self.bodies[i].clone()));
        *req.uri_mut() = self.uris[i].clone();
        if self.version == HttpVersion::H1 {
            req.headers_mut().insert(HOST, self.authority.clone());
        }
        if call == Call::Healthz {
            *req.method_mut() = Method::GET;
            req.headers_mut()
                .insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
            return Ok(req);
        }
        *req.method_mut() = Method::POST;
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, self.content_type.clone());
        h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        match self.protocol {
            Protocol::Grpc => {
                h.insert(http::header::TE, HeaderValue::from_static("trailers"));
            }
            Protocol::GrpcWeb | Protocol::GrpcWebText => {
                h.insert(ACCEPT, self.content_type.clone());
                h.insert(
                    HeaderName::from_static("x-grpc-web"),
                    HeaderValue::from_static("1"),
                );
            }
            Protocol::Rest => {
                h.insert(ACCEPT, HeaderValue::from_static("application/json"));
            }
        }
        if let Some(token) = token {
            let bad = |_| {
                Failure::new(
                    "BAD_RESPONSE",
                    "the refresh token is not a valid header value",
                )
            };
            match self.protocol {
                // SpaceONE's metadata key; a proxy in front of gRPC-Web passes headers as metadata.
                Protocol::Grpc | Protocol::GrpcWeb | Protocol::GrpcWebText => {
                    h.insert(
                        HeaderName::from_static("token"),
                        HeaderValue::from_str(token).map_err(bad)?,
                    );
                }
                Protocol::Rest => {
                    h.insert(
                        AUTHORIZATION,
                        HeaderValue::from_str(&format!("Bearer {token}")).map_err(bad)?,
                    );
                }
            }
        }
        Ok(req)
    }

    /// Judges a complete answer: the message on success, the failure otherwise.
    pub fn judge(
        &self,
        call: Call,
        status: http::StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        trailers: Option<&HeaderMap>,
    ) -> Result<Answer, Failure> {
        if call == Call::Healthz {
            return judge_rest(status, body);
        }
        match self.protocol {
            Protocol::Rest => judge_rest(status, body),
            Protocol::Grpc => judge_grpc(status, headers, body, trailers),
            Protocol::GrpcWeb => judge_grpc_web(status, headers, body),
            Protocol::GrpcWebText => {
                if status != http::StatusCode::OK {
                    return Err(http_failure(status, &body));
                }
                let raw = decode_grpc_web_text(&body).map_err(|e| {
                    Failure::new("BAD_RESPONSE", format!("grpc-web-text body: {e}"))
                })?;
                judge_grpc_web(status, headers, raw)
            }
        }
    }

    /// The refresh token of an issue or refresh answer.
    pub fn refresh_token(&self, answer: &Answer) -> Result<String, Failure> {
        let token = match self.protocol {
            Protocol::Rest => serde_json::from_slice::<serde_json::Value>(answer)
                .ok()
                .and_then(|v| v.get("refresh_token")?.as_str().map(str::to_owned)),
            _ => TokenInfo::decode(answer.clone())
                .ok()
                .map(|t| t.refresh_token),
        };
        match token {
            Some(t) if !t.is_empty() => Ok(t),
            _ => Err(Failure::new(
                "BAD_RESPONSE",
                "the answer carries no refresh_token",
            )),
        }
    }
}

/// The 5-byte gRPC length prefix (uncompressed) and the message.
pub fn grpc_frame(message: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + message.len());
    buf.put_u8(0);
    buf.put_u32(message.len() as u32);
    buf.put_slice(message);
    buf.freeze()
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

/// Percent-decodes a `grpc-message` value.
pub fn percent_decode(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%'
            && i + 2 < value.len()
            && let (Some(h), Some(l)) = (hex(value[i + 1]), hex(value[i + 2]))
        {
            out.push((h << 4) | l);
            i += 3;
            continue;
        }
        out.push(value[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn grpc_status_from(map: &HeaderMap) -> Option<Result<(u32, String), Failure>> {
    let status = map.get("grpc-status")?;
    let message = map
        .get("grpc-message")
        .map(|v| percent_decode(v.as_bytes()))
        .unwrap_or_default();
    Some(
        status
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .map(|code| (code, message))
            .ok_or_else(|| Failure::new("BAD_RESPONSE", "grpc-status is not a number")),
    )
}

fn status_result(code: u32, message: String, data: Option<Bytes>) -> Result<Answer, Failure> {
    if code != 0 {
        return Err(Failure::new(grpc_code_name(code), message));
    }
    data.ok_or_else(|| Failure::new("BAD_RESPONSE", "grpc-status 0 without a message"))
}

fn http_failure(status: http::StatusCode, body: &[u8]) -> Failure {
    // Error bodies of gateways may carry a JSON message; keep only a short sample otherwise.
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    Failure::new(format!("HTTP {}", status.as_u16()), message)
}

fn judge_rest(status: http::StatusCode, body: Bytes) -> Result<Answer, Failure> {
    if status == http::StatusCode::OK {
        Ok(body)
    } else {
        Err(http_failure(status, &body))
    }
}

/// The first length-prefixed message of a gRPC body.
fn first_message(mut body: Bytes) -> Result<Option<Bytes>, Failure> {
    if body.is_empty() {
        return Ok(None);
    }
    if body.len() < 5 {
        return Err(Failure::new("BAD_RESPONSE", "a truncated gRPC frame"));
    }
    let flags = body.get_u8();
    let len = body.get_u32() as usize;
    if flags & 0x01 != 0 {
        return Err(Failure::new(
            "BAD_RESPONSE",
            "a compressed message (none was asked for)",
        ));
    }
    if body.len() < len {
        return Err(Failure::new("BAD_RESPONSE", "a truncated gRPC message"));
    }
    Ok(Some(body.split_to(len)))
}

fn judge_grpc(
    status: http::StatusCode,
    headers: &HeaderMap,
    body: Bytes,
    trailers: Option<&HeaderMap>,
) -> Result<Answer, Failure> {
    if status != http::StatusCode::OK {
        return Err(http_failure(status, &body));
    }
    // Trailers-only answers put grpc-status in the headers.
    let found = grpc_status_from(headers).or_else(|| trailers.and_then(grpc_status_from));
    let (code, message) = match found {
        Some(r) => r?,
        None => {
            return Err(Failure::new(
                "BAD_RESPONSE",
                "no grpc-status in headers or trailers",
            ));
        }
    };
    let data = if code == 0 {
        first_message(body)?
    } else {
        None
    };
    status_result(code, message, data)
}

fn judge_grpc_web(
    status: http::StatusCode,
    headers: &HeaderMap,
    mut body: Bytes,
) -> Result<Answer, Failure> {
    if status != http::StatusCode::OK {
        return Err(http_failure(status, &body));
    }
    let mut data = None;
    let mut trailer_status = None;
    while !body.is_empty() {
        if body.len() < 5 {
            return Err(Failure::new("BAD_RESPONSE", "a truncated gRPC-Web frame"));
        }
        let flags = body.get_u8();
        let len = body.get_u32() as usize;
        if body.len() < len {
            return Err(Failure::new("BAD_RESPONSE", "a truncated gRPC-Web frame"));
        }
        let frame = body.split_to(len);
        if flags & 0x80 != 0 {
            trailer_status = Some(parse_trailer_block(&frame)?);
        } else if flags & 0x01 != 0 {
            return Err(Failure::new(
                "BAD_RESPONSE",
                "a compressed message (none was asked for)",
            ));
        } else if data.is_none() {
            data = Some(frame);
        }
    }
    let found = grpc_status_from(headers).or_else(|| trailer_status.map(Ok));
    let (code, message) = match found {
        Some(r) => r?,
        None => {
            return Err(Failure::new(
                "BAD_RESPONSE",
                "no grpc-status in headers or trailer frame",
            ));
        }
    };
    status_result(code, message, data)
}

/// The `name: value\r\n` block of a gRPC-Web trailer frame.
fn parse_trailer_block(block: &[u8]) -> Result<(u32, String), Failure> {
    let mut code = None;
    let mut message = String::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"grpc-status") {
            code = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u32>().ok());
            if code.is_none() {
                return Err(Failure::new("BAD_RESPONSE", "grpc-status is not a number"));
            }
        } else if name.eq_ignore_ascii_case(b"grpc-message") {
            message = percent_decode(value);
        }
    }
    code.map(|c| (c, message))
        .ok_or_else(|| Failure::new("BAD_RESPONSE", "a trailer frame without grpc-status"))
}

/// Decodes a grpc-web-text body, which may be several base64 chunks, each
/// with its own padding, one after the other.
pub fn decode_grpc_web_text(body: &[u8]) -> Result<Bytes, base64::DecodeError> {
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let mut start = 0;
    let mut i = 0;
    // A padded quantum ends a chunk: decode chunk by chunk.
    while i + 4 <= clean.len() {
        if clean[i + 3] == b'=' {
            STANDARD.decode_vec(&clean[start..i + 4], &mut out)?;
            start = i + 4;
        }
        i += 4;
    }
    if start < clean.len() {
        STANDARD.decode_vec(&clean[start..], &mut out)?;
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grpc_web_trailers(block: &str) -> Bytes {
        let mut b = BytesMut::new();
        b.put_u8(0x80);
        b.put_u32(block.len() as u32);
        b.put_slice(block.as_bytes());
        b.freeze()
    }

    #[test]
    fn codes_from_messages() {
        assert_eq!(
            spaceone_code("ERROR_AUTHENTICATION_FAILURE: A user \"x\" is not exist").as_deref(),
            Some("ERROR_AUTHENTICATION_FAILURE")
        );
        assert_eq!(spaceone_code("ERROR_: x"), None);
        assert_eq!(spaceone_code("error: x"), None);
        assert_eq!(spaceone_code("no colon"), None);
        assert_eq!(percent_decode(b"ERROR_X%3A a%20b %zz"), "ERROR_X: a b %zz");
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(grpc_code_name(16), "UNAUTHENTICATED");
        assert_eq!(grpc_code_name(42), "GRPC_42");
    }

    #[test]
    fn grpc_web_frames_and_text_chunks() {
        let mut body = BytesMut::new();
        body.put_slice(&grpc_frame(b"hello"));
        body.put_slice(&grpc_web_trailers("grpc-status:0\r\ngrpc-message:\r\n"));
        let ok = judge_grpc_web(
            http::StatusCode::OK,
            &HeaderMap::new(),
            body.clone().freeze(),
        );
        assert_eq!(ok.expect("ok"), Bytes::from_static(b"hello"));

        let fail = grpc_web_trailers(
            "grpc-status: 16\r\ngrpc-message: ERROR_AUTHENTICATION_FAILURE%3A no\r\n",
        );
        let err = judge_grpc_web(http::StatusCode::OK, &HeaderMap::new(), fail).expect_err("16");
        assert_eq!(err.key.status, "UNAUTHENTICATED");
        assert_eq!(
            err.key.code.as_deref(),
            Some("ERROR_AUTHENTICATION_FAILURE")
        );

        // Trailers-only: the status sits in the headers, the body is empty.
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("3"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static("ERROR_NOT_FOUND: x"),
        );
        let err = judge_grpc_web(http::StatusCode::OK, &headers, Bytes::new()).expect_err("3");
        assert_eq!(err.key.to_string(), "INVALID_ARGUMENT ERROR_NOT_FOUND");

        // No status at all is not a success.
        let err = judge_grpc_web(http::StatusCode::OK, &HeaderMap::new(), grpc_frame(b"x"))
            .expect_err("none");
        assert_eq!(err.key.status, "BAD_RESPONSE");

        // Text mode: each chunk encoded on its own, padding included.
        let data = grpc_frame(b"hello");
        let trailers = grpc_web_trailers("grpc-status:0\r\n");
        let text = format!("{}{}", STANDARD.encode(&data), STANDARD.encode(&trailers));
        let raw = decode_grpc_web_text(text.as_bytes()).expect("decode");
        assert_eq!(raw.len(), data.len() + trailers.len());
        assert_eq!(&raw[..data.len()], &data[..]);
    }

    #[test]
    fn native_grpc_status_sources() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let ok = judge_grpc(
            http::StatusCode::OK,
            &HeaderMap::new(),
            grpc_frame(b"m"),
            Some(&trailers),
        );
        assert_eq!(ok.expect("ok"), Bytes::from_static(b"m"));
        let err = judge_grpc(
            http::StatusCode::OK,
            &HeaderMap::new(),
            grpc_frame(b"m"),
            None,
        )
        .expect_err("none");
        assert_eq!(err.key.status, "BAD_RESPONSE");
        let err = judge_grpc(
            http::StatusCode::SERVICE_UNAVAILABLE,
            &HeaderMap::new(),
            Bytes::new(),
            None,
        )
        .expect_err("503");
        assert_eq!(err.key.status, "HTTP 503");
    }

    #[test]
    fn rest_errors_by_status_and_message() {
        let body = Bytes::from_static(
            br#"{"code":16,"message":"ERROR_AUTHENTICATION_FAILURE: A user","details":[]}"#,
        );
        let err = judge_rest(http::StatusCode::UNAUTHORIZED, body).expect_err("401");
        assert_eq!(err.key.to_string(), "HTTP 401 ERROR_AUTHENTICATION_FAILURE");
    }
}
