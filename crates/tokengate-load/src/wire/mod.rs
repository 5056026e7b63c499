//! Requests and answers on each protocol: request bodies are built once,
//! answers are judged by grpc-status (gRPC, gRPC-Web) or the HTTP status
//! (REST), and errors are keyed by status name plus SpaceONE error code.
//!
//! [`Wire`] builds one protocol's requests and sends its answers to the
//! right judge; the calls and their payload (`call`), how answers are
//! judged (`answer`) and how failures are classed (`failure`) have files
//! of their own.

mod answer;
mod call;
mod failure;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut as _, Bytes, BytesMut};
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT,
};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;
use prost::Message as _;

pub use self::answer::{Answer, decode_grpc_web_text, percent_decode};
use self::answer::{http_failure, judge_grpc, judge_grpc_web, judge_rest};
pub(crate) use self::call::CALL_KINDS;
pub use self::call::{Call, Payload};
pub use self::failure::{ErrorKey, Failure, grpc_code_name, spaceone_code};
use crate::error::LoadError;
use crate::proto::{AuthenticationRequest, IssueTokenRequest, TokenInfo, password_credentials};
use crate::protocol::{HttpVersion, Protocol};

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
