//! The RFC 6455 opening handshake on top of a parsed HTTP request (websocket.md §2).

use crate::http::request::Request;
use crate::http::response::Response;

/// Check an upgrade request; Ok gives the `101` bytes, Err the response to send
/// before closing.
pub fn accept(request: &Request) -> Result<Vec<u8>, Response> {
    if !request.header_has_token("upgrade", "websocket") {
        // A plain GET on the WebSocket endpoint (Reverb answers 500 here).
        return Err(Response::text(426, "Upgrade Required.").with_header("Upgrade", "websocket"));
    }
    if request.method != "GET"
        || request.minor_version < 1
        || !request.header_has_token("connection", "upgrade")
    {
        return Err(Response::text(400, "Bad request."));
    }
    if request.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(
            Response::text(426, "Upgrade Required.").with_header("Sec-WebSocket-Version", "13")
        );
    }
    let key = match request.header("sec-websocket-key").map(str::trim) {
        Some(key) if is_valid_key(key) => key,
        _ => return Err(Response::text(400, "Bad request.")),
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    // No permessage-deflate and no subprotocol echo, ever (websocket.md §2).
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nX-Powered-By: Laravel Reverb\r\n\r\n"
    )
    .into_bytes())
}

/// A key is the base64 form of 16 bytes: 22 base64 characters and `==`.
fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b[22..] == *b"=="
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example_key() {
        assert!(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key("not a key at all!!!!!!=="));
        // RFC 6455 §1.3: the sample key's accept value (the test had a wrong constant).
        assert_eq!(
            tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
