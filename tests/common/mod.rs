//! A real tokengate binary on a free port, and clients for every protocol:
//! a tonic client (native gRPC), a gRPC-Web client (binary and text, over
//! HTTP/1.1 and HTTP/2) and a REST client.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use prost::Message;

pub use tokengate::proto::core_v1::{AuthenticationRequest, AuthenticationResponse};
pub use tokengate::proto::identity_v1::{IssueTokenRequest, TokenInfo};

/// The password of every test user.
pub const PASSWORD: &str = "correct horse";

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The directory every conformance test uses.
pub fn directory_toml(cost: u32) -> String {
    let h = tokengate_directory::hash_bcrypt(PASSWORD, cost).expect("hash");
    format!(
        r#"
[[domain]]
domain_id = "domain-a"
state = "ENABLED"

[[domain.user]]
user_id = "alice@example.com"
password_hash = "{h}"

[[domain.user]]
user_id = "bob@example.com"
password_hash = "{h}"
state = "DISABLED"

[[domain.user]]
user_id = "robot"
password_hash = "{h}"
user_type = "API_USER"

[[domain.owner]]
owner_id = "root"
password_hash = "{h}"

[[domain]]
domain_id = "domain-off"
state = "DISABLED"

[[domain.user]]
user_id = "carol@example.com"
password_hash = "{h}"
"#
    )
}

/// Options for a test server.
pub struct ServerOptions {
    /// Extra TOML appended to the config.
    pub extra_config: String,
    /// bcrypt cost of the directory's hashes.
    pub bcrypt_cost: u32,
    /// Key algorithm.
    pub algorithm: &'static str,
    /// Environment overrides (`TOKENGATE_*`).
    pub env: Vec<(String, String)>,
    /// Use this keys folder instead of a private one (instances sharing keys).
    pub keys_dir: Option<PathBuf>,
    /// The directory file's text (default: [`directory_toml`]).
    pub directory: Option<String>,
}

/// The conformance tables fail many logins on purpose: raise the lockout
/// limits unless a test sets its own.
pub fn default_test_env() -> Vec<(String, String)> {
    vec![
        (
            "TOKENGATE_LIMITS_LOGIN_FAILURES_PER_USER".to_owned(),
            "1000000".to_owned(),
        ),
        (
            "TOKENGATE_LIMITS_LOGIN_FAILURES_PER_IP".to_owned(),
            "1000000".to_owned(),
        ),
    ]
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            extra_config: String::new(),
            bcrypt_cost: 4,
            algorithm: "EdDSA",
            env: default_test_env(),
            keys_dir: None,
            directory: None,
        }
    }
}

/// The address in a "serving ... on one port" log line, JSON or text.
fn listen_address(line: &str) -> Option<SocketAddr> {
    const MESSAGE: &str = "serving gRPC, gRPC-Web and REST on one port";
    if let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) {
        return (entry["message"] == MESSAGE).then(|| entry["listen"].as_str()?.parse().ok())?;
    }
    let (_, fields) = line.split_once(MESSAGE)?;
    let (_, rest) = fields.split_once("listen=")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A running `tokengate serve` process with its own config folder.
pub struct TestServer {
    pub addr: SocketAddr,
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub stderr_log: PathBuf,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let directory = options
            .directory
            .clone()
            .unwrap_or_else(|| directory_toml(options.bcrypt_cost));
        std::fs::write(dir.path().join("users.toml"), directory).expect("write directory");
        // Port 0: the server picks a free port and logs it. A port picked
        // here and bound by the server later could be taken in between by
        // another test's server or client socket (CI saw a test talk to a
        // port nobody listened on any more).
        let config = format!(
            "listen = \"127.0.0.1:0\"\ndirectory = \"users.toml\"\n[keys]\ndir = {:?}\nalgorithm = \"{}\"\n[cors]\nallowed_origins = [\"http://localhost:3000\"]\n[log]\nformat = \"json\"\nlevel = \"info\"\n{}",
            options.keys_dir.as_deref().unwrap_or(Path::new("keys")),
            options.algorithm,
            options.extra_config
        );
        let config_path = dir.path().join("tokengate.toml");
        std::fs::write(&config_path, config).expect("write config");
        let stderr_log = dir.path().join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_tokengate"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env_remove("TOKENGATE_CONFIG")
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_log).expect("log file"))
            .spawn()
            .expect("spawn tokengate");
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            dir,
            stderr_log,
        };
        server.addr = server.wait_listening();
        server
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("tokengate.toml")
    }

    /// This server's keys folder.
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Waits for the server's "serving ... on one port" log line (JSON or
    /// text) and
    /// returns the address it names.
    fn wait_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let listening = self.logs().lines().find_map(listen_address);
            if let Some(addr) = listening {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tokengate exited ({status}): {}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("tokengate did not start: {}", self.logs());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The value of the Prometheus sample `series` (a name, with its labels
    /// if it has any) on this server's /metrics; 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The outcome of a call on any protocol: a status code (gRPC numbering)
/// and message, plus the decoded body on success.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub code: i32,
    pub message: String,
    /// The ErrorInfo reason from the details, if any.
    pub reason: Option<String>,
    /// The raw response message (protobuf) on success.
    pub body: Option<Bytes>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

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
    Grpc,
    WebBinaryH1,
    WebBinaryH2,
    WebTextH1,
    WebTextH2,
    Rest,
}

pub const ALL_PROTOCOLS: [Proto; 6] = [
    Proto::Grpc,
    Proto::WebBinaryH1,
    Proto::WebBinaryH2,
    Proto::WebTextH1,
    Proto::WebTextH2,
    Proto::Rest,
];

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
    pub base: String,
    pub h1: reqwest::Client,
    pub h2: reqwest::Client,
    pub channel: tonic::transport::Channel,
}

impl Clients {
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
    if grpc_path.ends_with("/get_public_key") {
        let m: AuthenticationResponse =
            serde_json::from_value(json.clone()).expect("AuthenticationResponse JSON");
        Bytes::from(m.encode_to_vec())
    } else {
        let m: TokenInfo = serde_json::from_value(json.clone()).expect("TokenInfo JSON");
        Bytes::from(m.encode_to_vec())
    }
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

/// Reads lines from a child's stdout until `pred` matches one.
pub fn read_until(
    reader: &mut BufReader<std::process::ChildStdout>,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        let done = pred(&line);
        lines.push(std::mem::take(&mut line));
        if done {
            break;
        }
    }
    lines
}

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A blocking TCP connection to `to` from the local address `source` (on
/// Linux every 127.0.0.0/8 address is loopback: tests play a second client
/// machine from 127.0.0.2), with a 5 s read timeout.
pub fn connect_from(source: std::net::IpAddr, to: SocketAddr) -> std::net::TcpStream {
    let domain = if source.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .expect("bind the source address");
    socket.connect(&to.into()).expect("connect");
    let stream = std::net::TcpStream::from(socket);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream
}
