//! One client per protocol against a [`TestServer`]:
//! native gRPC (tonic, with a raw-bytes codec so one client calls any
//! method), gRPC-Web binary and text over HTTP/1.1 and HTTP/2, and REST
//! (reqwest). Every call ends as an [`Outcome`]: a gRPC status code and
//! message, the `ErrorInfo` reason and the success body as protobuf, so the
//! same call compares across protocols.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use prost::Message;

use crate::calls::{
    AuthenticationResponse, Call, EndSessionsResponse, IntrospectResponse, ListSessionsResponse,
    TokenInfo, issue_call, issue_request, refresh_call,
};
use crate::test_server::TestServer;

/// The outcome of a call on any protocol: a status code (gRPC numbering)
/// and message, plus the decoded body on success.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The gRPC status code (0 = OK).
    pub code: i32,
    /// The status message (`grpc-message`, or REST's `message`).
    pub message: String,
    /// The ErrorInfo reason from the details, if any.
    pub reason: Option<String>,
    /// The raw response message (protobuf) on success.
    pub body: Option<Bytes>,
}

impl Outcome {
    /// Whether the call succeeded.
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// The success body as message `M`; panics without one.
    pub fn decode<M: Message + Default>(&self) -> M {
        M::decode(self.body.clone().expect("a success body")).expect("decode")
    }
}

/// The reason of the ErrorInfo inside `grpc-status-details-bin` bytes.
pub fn reason_from_details(details: &[u8]) -> Option<String> {
    let status = tokengate::proto::google::rpc::Status::decode(details).ok()?;
    status.details.iter().find_map(|any| {
        tokengate::proto::google::rpc::ErrorInfo::decode(any.value.as_ref())
            .ok()
            .map(|i| i.reason)
    })
}

/// The protocols of the conformance matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Native gRPC (HTTP/2).
    Grpc,
    /// gRPC-Web, binary (`application/grpc-web+proto`), over HTTP/1.1.
    WebBinaryH1,
    /// gRPC-Web, binary, over HTTP/2 (prior knowledge).
    WebBinaryH2,
    /// gRPC-Web, text (`application/grpc-web-text`), over HTTP/1.1.
    WebTextH1,
    /// gRPC-Web, text, over HTTP/2 (prior knowledge).
    WebTextH2,
    /// REST (JSON over HTTP/1.1).
    Rest,
}

/// Every protocol, in the order the tests report them.
pub const ALL_PROTOCOLS: [Proto; 6] = [
    Proto::Grpc,
    Proto::WebBinaryH1,
    Proto::WebBinaryH2,
    Proto::WebTextH1,
    Proto::WebTextH2,
    Proto::Rest,
];

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes gRPC-Web text: base64 chunks, each possibly padded.
fn decode_web_text(body: &[u8]) -> Vec<u8> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::new();
    let mut start = 0;
    // Split after padding so each padded chunk decodes on its own.
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'=' {
            let mut end = i;
            while end < text.len() && text[end] == b'=' {
                end += 1;
            }
            out.extend(STANDARD.decode(&text[start..end]).expect("base64 chunk"));
            start = end;
            i = end;
        } else {
            i += 1;
        }
    }
    if start < text.len() {
        out.extend(STANDARD.decode(&text[start..]).expect("base64 tail"));
    }
    out
}

/// A gRPC length-prefixed frame (uncompressed) around `message`.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::with_capacity(message.len() + 5);
    buf.put_u8(0);
    buf.put_u32(message.len() as u32);
    buf.put_slice(message);
    buf.to_vec()
}

/// Calls over gRPC-Web with reqwest, parsing data and trailer frames.
pub async fn grpc_web(
    client: &reqwest::Client,
    base: &str,
    call: &Call<'_>,
    text: bool,
) -> Outcome {
    let framed = frame(&call.message);
    let (content_type, body) = if text {
        (
            "application/grpc-web-text",
            STANDARD.encode(&framed).into_bytes(),
        )
    } else {
        ("application/grpc-web+proto", framed)
    };
    let mut request = client
        .post(format!("{base}{}", call.grpc_path))
        .header("content-type", content_type)
        .header("accept", content_type)
        .header("x-grpc-web", "1")
        .body(body);
    for (k, v) in &call.headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.expect("grpc-web send");
    assert_eq!(response.status(), 200, "gRPC-Web answers HTTP 200");
    let headers = response.headers().clone();
    let raw = response.bytes().await.expect("body");
    let answered_text = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc-web-text"));
    assert_eq!(
        answered_text, text,
        "answer in the mode asked for: {headers:?}"
    );
    let payload = if text {
        decode_web_text(&raw)
    } else {
        raw.to_vec()
    };
    let mut buf = Bytes::from(payload);
    let mut message = None;
    let mut trailers = String::new();
    while buf.remaining() >= 5 {
        let flag = buf.get_u8();
        let len = buf.get_u32() as usize;
        let chunk = buf.split_to(len);
        if flag & 0x80 != 0 {
            trailers = String::from_utf8_lossy(&chunk).into_owned();
        } else {
            message = Some(chunk);
        }
    }
    let mut fields: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("grpc-"))
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    for line in trailers.split("\r\n") {
        if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let code: i32 = get("grpc-status")
        .expect("grpc-status present")
        .parse()
        .expect("numeric status");
    let reason = get("grpc-status-details-bin").and_then(|d| {
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(d.trim_end_matches('='))
            .ok()?;
        reason_from_details(&bytes)
    });
    Outcome {
        code,
        message: get("grpc-message")
            .map(|m| percent_decode(&m))
            .unwrap_or_default(),
        reason,
        body: if code == 0 { message } else { None },
    }
}

/// Calls over REST with reqwest; maps the JSON error back to an outcome.
pub async fn rest(
    client: &reqwest::Client,
    base: &str,
    call: &Call<'_>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut request = client
        .post(format!("{base}{}", call.rest_path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(call.json.clone());
    for (k, v) in &call.headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.expect("rest send");
    let status = response.status();
    let json = response.json().await.expect("JSON body");
    (status, json)
}

/// REST status and JSON as an outcome.
pub fn rest_outcome(status: reqwest::StatusCode, json: &serde_json::Value) -> Outcome {
    if status.is_success() {
        return Outcome {
            code: 0,
            message: String::new(),
            reason: None,
            body: None,
        };
    }
    Outcome {
        code: json["code"].as_i64().expect("code") as i32,
        message: json["message"].as_str().expect("message").to_owned(),
        reason: json["details"][0]["reason"].as_str().map(str::to_owned),
        body: None,
    }
}

/// Calls over native gRPC with tonic's generic client.
pub async fn grpc(channel: tonic::transport::Channel, call: &Call<'_>) -> Outcome {
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.expect("ready");
    let mut request = tonic::Request::new(Bytes::from(call.message.clone()));
    for (k, v) in &call.headers {
        let key = tonic::metadata::MetadataKey::from_bytes(k.as_bytes()).expect("metadata key");
        request
            .metadata_mut()
            .insert(key, v.parse().expect("metadata value"));
    }
    let path: http::uri::PathAndQuery = call.grpc_path.parse().expect("path");
    let result = client.unary(request, path, RawCodec).await;
    match result {
        Ok(response) => Outcome {
            code: 0,
            message: String::new(),
            reason: None,
            body: Some(response.into_inner()),
        },
        Err(status) => Outcome {
            code: status.code() as i32,
            message: status.message().to_owned(),
            reason: reason_from_details(status.details()),
            body: None,
        },
    }
}

/// A codec passing raw bytes, so one client calls any method.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Bytes>, tonic::Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}

/// Clients for every protocol against one server.
pub struct Clients {
    /// The server's base URL (`http://<addr>`).
    pub base: String,
    /// An HTTP/1.1-only client.
    pub h1: reqwest::Client,
    /// An HTTP/2 client (prior knowledge).
    pub h2: reqwest::Client,
    /// A connected gRPC channel.
    pub channel: tonic::transport::Channel,
}

impl Clients {
    /// Clients for `server`, the gRPC channel connected.
    pub async fn new(server: &TestServer) -> Self {
        let base = server.url("");
        let channel = tonic::transport::Channel::from_shared(base.clone())
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Self {
            h1: reqwest::Client::builder()
                .http1_only()
                .build()
                .expect("h1 client"),
            h2: reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .expect("h2 client"),
            base,
            channel,
        }
    }

    /// `Token.issue` over `proto` for a directory user of `domain` with a
    /// password (no `user_type`, timeout or refresh count).
    pub async fn issue(&self, proto: Proto, domain: &str, user: &str, password: &str) -> Outcome {
        let (req, json) = issue_request(domain, user, Some(password), "", 0, 0);
        self.call(proto, &issue_call(&req, json)).await
    }

    /// `Token.refresh` over `proto`, the token in the `token` metadata (the
    /// way SpaceONE's clients send it).
    pub async fn refresh(&self, proto: Proto, token: &str) -> Outcome {
        self.call(proto, &refresh_call(vec![("token", token.to_owned())]))
            .await
    }

    /// Runs `call` over `proto`.
    pub async fn call(&self, proto: Proto, call: &Call<'_>) -> Outcome {
        match proto {
            Proto::Grpc => grpc(self.channel.clone(), call).await,
            Proto::WebBinaryH1 => grpc_web(&self.h1, &self.base, call, false).await,
            Proto::WebBinaryH2 => grpc_web(&self.h2, &self.base, call, false).await,
            Proto::WebTextH1 => grpc_web(&self.h1, &self.base, call, true).await,
            Proto::WebTextH2 => grpc_web(&self.h2, &self.base, call, true).await,
            Proto::Rest => {
                let (status, json) = rest(&self.h1, &self.base, call).await;
                let mut outcome = rest_outcome(status, &json);
                if outcome.ok() {
                    outcome.body = Some(json_to_message(call.grpc_path, &json));
                } else {
                    let expected = tokengate::transport::status::http_status(
                        tonic::Code::from_i32(outcome.code),
                    );
                    assert_eq!(
                        status.as_u16(),
                        expected.as_u16(),
                        "grpc-gateway HTTP mapping for {json}"
                    );
                }
                outcome
            }
        }
    }
}

/// Re-encodes a REST JSON answer as the method's protobuf output, so
/// success bodies compare across protocols.
fn json_to_message(grpc_path: &str, json: &serde_json::Value) -> Bytes {
    macro_rules! encode {
        ($m:ty) => {{
            let m: $m = serde_json::from_value(json.clone()).expect("answer JSON of its message");
            Bytes::from(m.encode_to_vec())
        }};
    }
    let method = grpc_path.rsplit('/').next().unwrap_or_default();
    if grpc_path.starts_with("/tokengate.session.v1.Session/") {
        return match method {
            "revoke" => encode!(pbjson_types::Empty),
            "list" => encode!(ListSessionsResponse),
            "introspect" => encode!(IntrospectResponse),
            _ => encode!(EndSessionsResponse),
        };
    }
    if method == "get_public_key" {
        encode!(AuthenticationResponse)
    } else {
        encode!(TokenInfo)
    }
}
