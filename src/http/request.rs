//! Reading one HTTP/1.1 request from a socket with hard limits: the whole request
//! (head and body) may not exceed `max_request_size`, so a client can never make the
//! server buffer more than that.

use futures_lite::{AsyncRead, AsyncReadExt};

/// Headers beyond this count are a malformed request.
const MAX_HEADERS: usize = 64;

/// A parsed request. Header names are lowercase.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The raw query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// Whether the connection must close after the answer.
    pub fn wants_close(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        self.minor_version == 0 && !connection.contains("keep-alive")
            || connection.split(',').any(|t| t.trim() == "close")
    }

    /// Whether a header holds `token` in its comma-separated list (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

/// Why no request could be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The peer closed (or reset) before sending a complete request; nothing to answer.
    Closed,
    /// Over `max_request_size`: answer 413.
    TooLarge,
    /// Not HTTP: answer 400.
    Malformed,
    /// A body without `Content-Length` (chunked): answer 411.
    LengthRequired,
}

/// Read one request. `buf` carries bytes between calls: leftovers after this request
/// (pipelined requests, or the first WebSocket frames after an upgrade) stay in it.
pub async fn read_request(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Request, ReadError> {
    loop {
        if !buf.is_empty() {
            match parse_head(buf)? {
                Some((head_len, mut request, content_length)) => {
                    if head_len + content_length > max {
                        return Err(ReadError::TooLarge);
                    }
                    while buf.len() < head_len + content_length {
                        fill(stream, buf, max).await?;
                    }
                    request.body = buf[head_len..head_len + content_length].to_vec();
                    buf.drain(..head_len + content_length);
                    return Ok(request);
                }
                None if buf.len() >= max => return Err(ReadError::TooLarge),
                None => {}
            }
        }
        fill(stream, buf, max).await?;
    }
}

async fn fill(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<(), ReadError> {
    let start = buf.len();
    // Read at most one byte past the limit: enough to know the request is too large.
    let want = (max + 1).saturating_sub(start).clamp(1, 4096);
    buf.resize(start + want, 0);
    let n = stream.read(&mut buf[start..]).await.unwrap_or(0);
    buf.truncate(start + n);
    if n == 0 {
        return Err(ReadError::Closed);
    }
    Ok(())
}

/// Parse the head if complete: (head length, request without body, body length).
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Request, usize)>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ReadError::Malformed),
    };
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let request = Request {
        method: parsed.method.unwrap_or("").to_string(),
        target: parsed.path.unwrap_or("").to_string(),
        minor_version: parsed.version.unwrap_or(1),
        headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(ReadError::LengthRequired);
    }
    let content_length = match request.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| ReadError::Malformed)?,
    };
    Ok(Some((head_len, request, content_length)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_head_and_reports_body_length() {
        let raw = b"POST /apps/1/events?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}";
        let (head_len, req, len) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head_len, raw.len() - 2);
        assert_eq!(len, 2);
        assert_eq!(req.path(), "/apps/1/events");
        assert_eq!(req.query(), Some("x=1"));
        assert_eq!(req.header("host"), Some("a"));
    }

    #[test]
    fn partial_and_malformed() {
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost").unwrap().is_none());
        assert_eq!(
            parse_head(b"\x00\x01garbage\r\n\r\n").unwrap_err(),
            ReadError::Malformed
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap_err(),
            ReadError::LengthRequired
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").unwrap_err(),
            ReadError::Malformed
        );
    }

    #[test]
    fn connection_close_rules() {
        let (_, req, _) = parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(req.wants_close());
        let (_, req, _) = parse_head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(req.wants_close());
        let (_, req, _) = parse_head(b"GET / HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert!(!req.wants_close());
    }
}
