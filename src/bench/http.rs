//! A small HTTP/1.1 client for the Pusher HTTP API on a client executor: requests
//! signed like the server SDKs do (http-api.md §3: `auth_key`, `auth_timestamp`,
//! `auth_version`, `body_md5`, HMAC-SHA256 over method, path and sorted query), one
//! keep-alive connection reused while the server allows it (Reverb closes after every
//! answer; reverb-shard, soketi and sockudo keep it open).

use std::future::poll_fn;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

use super::client::within;
use super::dial;
use super::fail::Fail;
use super::target::HttpTarget;
use crate::api::signature::md5_hex;
use crate::pusher::auth::sign;

/// Largest answer read (the API's answers are tiny).
const MAX_ANSWER: usize = 1 << 20;

/// Credentials and where to send.
#[derive(Debug, Clone)]
pub struct ApiTarget {
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// The server's route prefix ("" or "/segment").
    pub prefix: String,
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

impl ApiTarget {
    pub fn new(
        target: &HttpTarget,
        addr: SocketAddr,
        app_id: &str,
        key: &str,
        secret: &str,
    ) -> ApiTarget {
        ApiTarget {
            addr,
            host: target.endpoint.authority(),
            prefix: target.endpoint.prefix.clone(),
            app_id: app_id.into(),
            key: key.into(),
            secret: secret.into(),
        }
    }

    /// The signed request target for `method` on `path` (after the prefix, e.g.
    /// `/apps/1/events`) with `body`. The signature covers the path without the
    /// prefix, as Reverb checks it.
    pub fn signed_target(&self, method: &str, path: &str, body: &[u8], now_s: u64) -> String {
        let mut query = format!(
            "auth_key={}&auth_timestamp={now_s}&auth_version=1.0",
            self.key
        );
        if !body.is_empty() {
            query.push_str("&body_md5=");
            query.push_str(&md5_hex(body));
        }
        let signature = sign(&self.secret, &format!("{method}\n{path}\n{query}"));
        format!("{}{path}?{query}&auth_signature={signature}", self.prefix)
    }
}

/// A server's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive API connection.
pub struct ApiClient {
    target: ApiTarget,
    source: Option<Ipv4Addr>,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    request: Vec<u8>,
}

impl ApiClient {
    pub fn new(target: ApiTarget, source: Option<Ipv4Addr>) -> ApiClient {
        ApiClient {
            target,
            source,
            stream: None,
            buf: Vec::with_capacity(4096),
            request: Vec::with_capacity(4096),
        }
    }

    pub fn target(&self) -> &ApiTarget {
        &self.target
    }

    /// `POST {prefix}/apps/{id}/events`-style request with a JSON body, signed.
    pub async fn post(&mut self, path: &str, body: &[u8], limit: Duration) -> Result<Answer, Fail> {
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let request_target = self.target.signed_target("POST", path, body, now_s);
        self.request.clear();
        self.request.extend_from_slice(
            format!(
                "POST {request_target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                self.target.host,
                body.len()
            )
            .as_bytes(),
        );
        self.request.extend_from_slice(body);
        let reused = self.stream.is_some();
        match self.exchange(limit).await {
            // A kept-alive connection the server closed meanwhile: once more, fresh.
            Err(Fail::Eof | Fail::Reset) if reused => {
                self.stream = None;
                self.exchange(limit).await
            }
            other => other,
        }
    }

    async fn exchange(&mut self, limit: Duration) -> Result<Answer, Fail> {
        let deadline = std::time::Instant::now() + limit;
        let outcome = within(deadline, "api_answer", self.exchange_inner(limit)).await;
        let outcome = outcome.and_then(|r| r);
        if outcome.is_err() {
            self.stream = None;
        }
        outcome
    }

    async fn exchange_inner(&mut self, limit: Duration) -> Result<Answer, Fail> {
        if self.stream.is_none() {
            self.stream = Some(dial::dial(self.target.addr, self.source, limit).await?);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().expect("connected above");
        write_all(stream, &self.request).await?;
        loop {
            if let Some(head) = parse_head(&self.buf)? {
                let Some(len) = head.content_length else {
                    // No length: the body runs to the end of the connection.
                    while read_more(stream, &mut self.buf).await? > 0 {}
                    let body = self.buf[head.len..].to_vec();
                    self.buf.clear();
                    self.stream = None;
                    return Ok(Answer {
                        status: head.status,
                        body,
                    });
                };
                read_at_least(stream, &mut self.buf, head.len + len).await?;
                let body = self.buf[head.len..head.len + len].to_vec();
                self.buf.drain(..head.len + len);
                if head.close {
                    self.stream = None;
                }
                return Ok(Answer {
                    status: head.status,
                    body,
                });
            }
            if read_more(stream, &mut self.buf).await? == 0 {
                return Err(Fail::Eof);
            }
        }
    }
}

/// What the client needs from an answer's head.
struct Head {
    status: u16,
    /// Bytes of the status line and headers.
    len: usize,
    content_length: Option<usize>,
    /// The server closes after this answer (HTTP/1.0 or `Connection: close`).
    close: bool,
}

/// The answer's head once it is complete in `buf`.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Fail> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Fail::HttpInvalid("not an HTTP answer")),
    };
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    Ok(Some(Head {
        status: response.code.unwrap_or(0),
        len,
        content_length: header("content-length").and_then(|v| v.parse().ok()),
        close: response.version == Some(0)
            || header("connection").is_some_and(|v| v.contains("close")),
    }))
}

async fn write_all(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), Fail> {
    let mut written = 0;
    while written < bytes.len() {
        let n = poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, &bytes[written..]))
            .await
            .map_err(|e| Fail::from_io(&e))?;
        if n == 0 {
            return Err(Fail::Reset);
        }
        written += n;
    }
    Ok(())
}

/// Append what one read brings; 0 at EOF.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, Fail> {
    if buf.len() >= MAX_ANSWER {
        return Err(Fail::HttpInvalid("answer too long"));
    }
    // The API's answers are a few hundred bytes: a small chunk, not a big zeroed buffer.
    let mut chunk = [0u8; 2048];
    let n = poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, &mut chunk))
        .await
        .map_err(|e| Fail::from_io(&e))?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

async fn read_at_least(stream: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> Result<(), Fail> {
    if len > MAX_ANSWER {
        return Err(Fail::HttpInvalid("answer too long"));
    }
    while buf.len() < len {
        if read_more(stream, buf).await? == 0 {
            return Err(Fail::Eof);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_spec_example() {
        let target = ApiTarget {
            addr: "127.0.0.1:1".parse().unwrap(),
            host: "127.0.0.1:1".into(),
            prefix: String::new(),
            app_id: "123456".into(),
            key: "app-key".into(),
            secret: "app-secret".into(),
        };
        let body =
            br#"{"name":"order.shipped","channels":["private-orders.42"],"data":"{\"id\":42}"}"#;
        assert_eq!(
            target.signed_target("POST", "/apps/123456/events", body, 1_700_000_000),
            "/apps/123456/events?auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0\
             &body_md5=a2759d9532f4abbe833d25bdd454545f\
             &auth_signature=990e61207a33d19c692d23a266decdfaa304ecdb61a8c4ce89a928e5bab444f3"
        );
        let prefixed = ApiTarget {
            prefix: "/ws".into(),
            ..target
        };
        assert!(prefixed
            .signed_target("GET", "/apps/123456/channels", b"", 1)
            .starts_with("/ws/apps/123456/channels?auth_key=app-key&auth_timestamp=1&auth_version=1.0&auth_signature="));
    }
}
