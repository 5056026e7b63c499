//! Judging answers, per protocol: REST by the HTTP status; native gRPC by
//! grpc-status in the headers (trailers-only) or the trailers; gRPC-Web by
//! grpc-status in the headers or the trailer frame of the body, after
//! decoding the base64 chunks of text mode. A success yields the message
//! ([`Answer`]), anything else a [`Failure`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf as _, Bytes};
use http::HeaderMap;

use super::failure::{Failure, grpc_code_name};

/// The message of a successful answer: protobuf bytes (gRPC, gRPC-Web) or
/// JSON (REST).
pub type Answer = Bytes;

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

pub(super) fn http_failure(status: http::StatusCode, body: &[u8]) -> Failure {
    // Error bodies of gateways may carry a JSON message; keep only a short sample otherwise.
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    Failure::new(format!("HTTP {}", status.as_u16()), message)
}

pub(super) fn judge_rest(status: http::StatusCode, body: Bytes) -> Result<Answer, Failure> {
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

pub(super) fn judge_grpc(
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

pub(super) fn judge_grpc_web(
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
    use bytes::{BufMut as _, BytesMut};
    use http::HeaderValue;

    use super::*;
    use crate::wire::grpc_frame;

    fn grpc_web_trailers(block: &str) -> Bytes {
        let mut b = BytesMut::new();
        b.put_u8(0x80);
        b.put_u32(block.len() as u32);
        b.put_slice(block.as_bytes());
        b.freeze()
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(percent_decode(b"ERROR_X%3A a%20b %zz"), "ERROR_X: a b %zz");
        assert_eq!(percent_decode(b"100%"), "100%");
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
