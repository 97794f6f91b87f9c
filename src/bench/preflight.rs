//! Checks before a run, with plain blocking sockets: every `--url` answers the
//! WebSocket handshake and sends `connection_established` for the app key, and (for
//! scenarios that publish) the HTTP API accepts the signed requests. A server that
//! cannot be reached or refuses the credentials ends the command with a clear error
//! (exit code 1) instead of a report full of failures.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::client::{parse, Endpoint};
use super::http::ApiTarget;
use crate::ws::frame::{self, Opcode};

const LIMIT: Duration = Duration::from_secs(5);

/// Handshake with `endpoint` and read its first message.
pub fn websocket(url: &str, endpoint: &Endpoint, key: &str) -> Result<(), String> {
    let mut stream = connect(url, endpoint.addr)?;
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        endpoint.path, endpoint.host
    );
    if let Some(origin) = &endpoint.origin {
        request.push_str(&format!("Origin: {origin}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let deadline = Instant::now() + LIMIT;
    let mut buf = Vec::new();
    let head_len = loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.unwrap_or(0);
                if status != 101 {
                    return Err(format!(
                        "{url}: the WebSocket handshake for /app/{key} was answered with HTTP \
                         {status} (is it a Pusher-protocol server, with this path prefix?)"
                    ));
                }
                break len;
            }
            Ok(httparse::Status::Partial) => read_more(&mut stream, &mut buf, deadline, url)?,
            Err(_) => {
                return Err(format!(
                    "{url}: the answer to the WebSocket handshake is not HTTP"
                ))
            }
        }
    };
    buf.drain(..head_len);
    loop {
        if let Some(head) = frame::frame_head(&buf) {
            let end = head.frame_len() as usize;
            if buf.len() >= end {
                if head.opcode == Some(Opcode::Close) {
                    return Err(format!("{url}: the server closed the connection at once"));
                }
                let Some(msg) = parse(&buf[head.header_len..end]) else {
                    return Err(format!(
                        "{url}: the server's first message is not Pusher JSON"
                    ));
                };
                let _ = stream.write_all(&close_frame());
                return match msg.event.as_str() {
                    "pusher:connection_established" => Ok(()),
                    "pusher:error" => Err(format!(
                        "{url}: the server refused app key `{key}`: {}",
                        msg.pusher_error()
                    )),
                    other => Err(format!(
                        "{url}: expected pusher:connection_established, got {other}"
                    )),
                };
            }
        }
        read_more(&mut stream, &mut buf, deadline, url)?;
    }
}

/// A signed `GET /apps/{id}/channels`: reachable, app id known, signature accepted.
pub fn api(url: &str, target: &ApiTarget) -> Result<(), String> {
    let mut stream = connect(url, target.addr)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let path = format!("/apps/{}/channels", target.app_id);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.signed_target("GET", &path, b"", now),
        target.host
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot reach the HTTP API at {url}: {e}"))?;
    let deadline = Instant::now() + LIMIT;
    let mut buf = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.unwrap_or(0);
                if status == 200 {
                    return Ok(());
                }
                // Give the body a moment to arrive for the message.
                let _ = read_more(
                    &mut stream,
                    &mut buf,
                    Instant::now() + Duration::from_millis(200),
                    url,
                );
                let body = String::from_utf8_lossy(&buf[len.min(buf.len())..])
                    .trim()
                    .to_string();
                return Err(format!(
                    "the HTTP API at {url} answered GET {path} with HTTP {status} {body} \
                     (check --app-id, --key and --secret)"
                ));
            }
            Ok(httparse::Status::Partial) => read_more(&mut stream, &mut buf, deadline, url)?,
            Err(_) => return Err(format!("{url}: the HTTP API's answer is not HTTP")),
        }
    }
}

fn connect(url: &str, addr: SocketAddr) -> Result<TcpStream, String> {
    let stream =
        TcpStream::connect_timeout(&addr, LIMIT).map_err(|e| format!("cannot reach {url}: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    url: &str,
) -> Result<(), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!("{url}: no answer within {} s", LIMIT.as_secs()));
    }
    let _ = stream.set_read_timeout(Some(left));
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) => Err(format!("{url}: the server closed the connection")),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > 1 << 20 {
                return Err(format!("{url}: the answer is too long"));
            }
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!("{url}: no answer within {} s", LIMIT.as_secs()))
        }
        Err(e) => Err(format!("{url}: {e}")),
    }
}

fn close_frame() -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_masked_into(
        Opcode::Close,
        &1000u16.to_be_bytes(),
        [7, 7, 7, 7],
        &mut out,
    );
    out
}
