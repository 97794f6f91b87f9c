//! What the bench puts into the events it sends and how a receiver reads it back
//! without parsing JSON: a marker `#b:SOURCE:SEQ:SENT_NS;` (plain ASCII, so it reads
//! the same inside a JSON string, escaped or not), plus the small scans the receive
//! path needs (the event name, a presence user id) and the channel signatures.

use std::io::Write;
use std::sync::LazyLock;

use memchr::memmem;

static MARKER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"#b:"));
static EVENT_KEY: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"event\""));
static USER_ID_KEY: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"user_id"));

/// What a bench event carries: who sent it, its number in that sender's sequence and
/// when it was sent (`clock::now_ns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub source: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

/// Appends the marker text.
pub fn write_marker(out: &mut Vec<u8>, m: Marker) {
    let _ = write!(out, "#b:{}:{}:{};", m.source, m.seq, m.sent_ns);
}

/// Appends `pad` filler bytes (plain letters, valid in any JSON string).
pub fn write_padding(out: &mut Vec<u8>, pad: usize) {
    out.resize(out.len() + pad, b'x');
}

/// Finds and reads the marker in a received message.
pub fn find_marker(payload: &[u8]) -> Option<Marker> {
    let at = MARKER.find(payload)? + 3;
    let mut rest = &payload[at..];
    let source = take_number(&mut rest, b':')?;
    let seq = take_number(&mut rest, b':')?;
    let sent_ns = take_number(&mut rest, b';')?;
    Some(Marker {
        source: u32::try_from(source).ok()?,
        seq,
        sent_ns,
    })
}

/// Reads decimal digits up to `end` (consumed too).
fn take_number(rest: &mut &[u8], end: u8) -> Option<u64> {
    let mut n: u64 = 0;
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b'0'..=b'9' if i < 20 => {
                n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            }
            b if b == end && i > 0 => {
                *rest = &rest[i + 1..];
                return Some(n);
            }
            _ => return None,
        }
    }
    None
}

/// The `event` value of a server message (`"event":"NAME"`, optional spaces).
pub fn event_name(payload: &[u8]) -> Option<&[u8]> {
    let at = EVENT_KEY.find(payload)? + 7;
    let rest = skip_json_sep(&payload[at..])?;
    let rest = rest.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

/// Skips `:` and blanks.
fn skip_json_sep(s: &[u8]) -> Option<&[u8]> {
    let start = s.iter().position(|b| !matches!(b, b' ' | b':' | b'\t'))?;
    Some(&s[start..])
}

/// The bench's presence user ids are `{prefix}{n}`, e.g. `bm12`: finds the `user_id`
/// in a member event (the data is usually an escaped JSON string) and returns `n` when
/// the id starts with `prefix`.
pub fn user_number(payload: &[u8], prefix: &[u8]) -> Option<u64> {
    let at = USER_ID_KEY.find(payload)? + 7;
    let rest = &payload[at..];
    let start = rest
        .iter()
        .position(|b| !matches!(b, b'\\' | b'"' | b':' | b' '))?;
    let rest = rest[start..].strip_prefix(prefix)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// `auth` for a private or presence subscription, signed locally with the secret
/// (websocket.md §8.1).
pub fn channel_auth(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    let message = match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    };
    format!("{key}:{}", crate::pusher::auth::sign(secret, &message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip_in_any_envelope() {
        let m = Marker {
            source: 3,
            seq: 1234,
            sent_ns: 98_765_432_100,
        };
        let mut text = Vec::new();
        write_marker(&mut text, m);
        assert_eq!(text, b"#b:3:1234:98765432100;");
        // As an HTTP API event (data is a JSON string) and as a client event (object).
        let api = format!(
            r#"{{"event":"bench","data":"{{\"m\":\"{}\"}}","channel":"bench-0"}}"#,
            String::from_utf8_lossy(&text)
        );
        assert_eq!(find_marker(api.as_bytes()), Some(m));
        let client = format!(
            r#"{{"event":"client-bench","channel":"private-bench-1","data":{{"m":"{}"}},"user_id":"bm1"}}"#,
            String::from_utf8_lossy(&text)
        );
        assert_eq!(find_marker(client.as_bytes()), Some(m));
        assert_eq!(find_marker(b"#b:1:2;"), None);
        assert_eq!(find_marker(b"#b::2:3;"), None);
        assert_eq!(find_marker(b"#b:1:2:3"), None);
        assert_eq!(find_marker(b"#b:1:99999999999999999999999:3;"), None);
        assert_eq!(find_marker(br#"{"event":"pusher:pong"}"#), None);
    }

    #[test]
    fn event_names_and_user_ids() {
        let added = br#"{"event":"pusher_internal:member_added","data":"{\"user_id\":\"bm12\",\"user_info\":{}}","channel":"presence-bench-0"}"#;
        assert_eq!(
            event_name(added),
            Some(&b"pusher_internal:member_added"[..])
        );
        assert_eq!(user_number(added, b"bm"), Some(12));
        assert_eq!(user_number(added, b"bw"), None);
        let spaced = br#"{"event": "x", "data": {"user_id": "bm7"}}"#;
        assert_eq!(event_name(spaced), Some(&b"x"[..]));
        assert_eq!(user_number(spaced, b"bm"), Some(7));
        assert_eq!(event_name(b"{}"), None);
    }

    #[test]
    fn signatures_match_the_spec_example() {
        assert_eq!(
            channel_auth(
                "app-key",
                "app-secret",
                "123456789.987654321",
                "private-orders.42",
                None
            ),
            "app-key:89cb3d79fcfe7beffb870e778a4dfa0ce2282d0ece6272e98e18c3e344894e4e"
        );
    }
}
