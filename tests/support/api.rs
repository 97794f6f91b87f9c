//! Signed Pusher HTTP API requests over a raw loopback socket, signed exactly as the
//! Pusher server SDKs sign them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

use super::{APP_ID, APP_KEY, APP_SECRET};

/// A response: status and body text.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub body: String,
}

impl ApiResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed query string for `method path` with extra `params` and `body`.
pub fn signed_query(
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &[u8],
    secret: &str,
) -> String {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut pairs: Vec<(String, String)> = vec![
        ("auth_key".into(), APP_KEY.into()),
        ("auth_timestamp".into(), timestamp),
        ("auth_version".into(), "1.0".into()),
    ];
    if !body.is_empty() {
        pairs.push(("body_md5".into(), hex(&Md5::digest(body))));
    }
    pairs.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{method}\n{path}\n{query}").as_bytes());
    format!(
        "{query}&auth_signature={}",
        hex(&mac.finalize().into_bytes())
    )
}

/// Send one raw HTTP/1.1 request (Connection: close) and read the whole answer.
pub fn raw_request(port: u16, request: &[u8]) -> ApiResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    ApiResponse { status, body }
}

/// A request signed with the demo app's credentials; `path` starts with `/apps/{APP_ID}`.
pub fn call(
    port: u16,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &str,
) -> ApiResponse {
    call_with_secret(port, method, path, params, body, APP_SECRET)
}

pub fn call_with_secret(
    port: u16,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &str,
    secret: &str,
) -> ApiResponse {
    let query = signed_query(method, path, params, body.as_bytes(), secret);
    let request = format!(
        "{method} {path}?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw_request(port, request.as_bytes())
}

/// `POST /apps/{APP_ID}/events` with a JSON body.
pub fn trigger(port: u16, body: &serde_json::Value) -> ApiResponse {
    call(
        port,
        "POST",
        &format!("/apps/{APP_ID}/events"),
        &[],
        &body.to_string(),
    )
}
