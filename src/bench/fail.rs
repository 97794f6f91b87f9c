//! Why a connection, a subscription or a publish failed, and the per-cause tally the
//! report prints (one stable key per cause, e.g. `refused`, `timeout_handshake`,
//! `handshake_status_404`, `pusher_error_4009`, with the first message seen).

use std::collections::BTreeMap;
use std::fmt;
use std::io;

/// One failure, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    /// TCP connection refused (nothing listens, or the backlog overflowed).
    Refused,
    /// A step did not finish in time; the str names the step.
    Timeout(&'static str),
    /// The peer reset the connection (or the pipe broke).
    Reset,
    /// No local port/address left (ephemeral ports exhausted): use --source-ips.
    AddrNotAvailable,
    /// The tool ran out of file descriptors.
    TooManyFiles,
    /// Any other I/O error.
    Io(io::ErrorKind, String),
    /// The handshake was answered with this HTTP status instead of 101.
    HandshakeStatus(u16),
    /// The handshake answer was not a valid 101.
    HandshakeInvalid(&'static str),
    /// `pusher:error` with this code and message.
    PusherError(u16, String),
    /// `pusher:subscription_error` (Pusher, soketi) with this status.
    SubscriptionError(String),
    /// The server sent a Close frame (with its status).
    Closed(Option<u16>),
    /// The server closed TCP without a Close frame.
    Eof,
    /// The server broke the frame protocol.
    Protocol(&'static str),
    /// The HTTP API answered a publish with this status (and body).
    HttpStatus(u16, String),
    /// The HTTP API's answer could not be read.
    HttpInvalid(&'static str),
}

impl Fail {
    pub fn from_io(e: &io::Error) -> Fail {
        match e.raw_os_error() {
            Some(libc::ECONNREFUSED) => return Fail::Refused,
            Some(libc::ECONNRESET) | Some(libc::EPIPE) | Some(libc::ECONNABORTED) => {
                return Fail::Reset
            }
            Some(libc::EADDRNOTAVAIL) | Some(libc::EADDRINUSE) => return Fail::AddrNotAvailable,
            Some(libc::EMFILE) | Some(libc::ENFILE) => return Fail::TooManyFiles,
            Some(libc::ETIMEDOUT) => return Fail::Timeout("connect"),
            _ => {}
        }
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Fail::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => Fail::Reset,
            io::ErrorKind::TimedOut => Fail::Timeout("connect"),
            io::ErrorKind::UnexpectedEof => Fail::Eof,
            kind => Fail::Io(kind, e.to_string()),
        }
    }

    /// The stable key of the cause (JSON key and table row).
    pub fn key(&self) -> String {
        match self {
            Fail::Refused => "refused".into(),
            Fail::Timeout(step) => format!("timeout_{step}"),
            Fail::Reset => "reset".into(),
            Fail::AddrNotAvailable => "addr_not_available".into(),
            Fail::TooManyFiles => "too_many_open_files".into(),
            Fail::Io(kind, _) => format!("io_{}", snake(&format!("{kind:?}"))),
            Fail::HandshakeStatus(status) => format!("handshake_status_{status}"),
            Fail::HandshakeInvalid(_) => "handshake_invalid".into(),
            Fail::PusherError(code, _) => format!("pusher_error_{code}"),
            Fail::SubscriptionError(status) => format!("subscription_error_{status}"),
            Fail::Closed(Some(code)) => format!("closed_{code}"),
            Fail::Closed(None) => "closed".into(),
            Fail::Eof => "eof".into(),
            Fail::Protocol(_) => "protocol_error".into(),
            Fail::HttpStatus(status, _) => format!("publish_http_{status}"),
            Fail::HttpInvalid(_) => "publish_invalid_answer".into(),
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Refused => f.write_str("connection refused"),
            Fail::Timeout(step) => write!(f, "no {step} within the time limit"),
            Fail::Reset => f.write_str("connection reset by the server"),
            Fail::AddrNotAvailable => f.write_str(
                "no local address/port left (ephemeral ports exhausted; try --source-ips)",
            ),
            Fail::TooManyFiles => {
                f.write_str("too many open files in the bench process (raise ulimit -n)")
            }
            Fail::Io(_, e) => f.write_str(e),
            Fail::HandshakeStatus(status) => {
                write!(f, "the handshake was answered with HTTP {status}")
            }
            Fail::HandshakeInvalid(why) => write!(f, "invalid handshake answer: {why}"),
            Fail::PusherError(code, message) => write!(f, "pusher:error {code} {message}"),
            Fail::SubscriptionError(status) => {
                write!(f, "pusher:subscription_error (status {status})")
            }
            Fail::Closed(Some(code)) => write!(f, "closed by the server with status {code}"),
            Fail::Closed(None) => f.write_str("closed by the server"),
            Fail::Eof => f.write_str("the server closed the connection"),
            Fail::Protocol(why) => write!(f, "WebSocket protocol error: {why}"),
            Fail::HttpStatus(status, body) => write!(f, "HTTP {status} {}", body.trim()),
            Fail::HttpInvalid(why) => write!(f, "invalid HTTP answer: {why}"),
        }
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Failures by cause: count and the first message seen.
#[derive(Debug, Default, Clone)]
pub struct Failures {
    by_cause: BTreeMap<String, (u64, String)>,
}

impl Failures {
    pub fn add(&mut self, fail: &Fail) {
        self.add_n(fail.key(), 1, || fail.to_string());
    }

    fn add_n(&mut self, key: String, n: u64, example: impl FnOnce() -> String) {
        self.by_cause
            .entry(key)
            .and_modify(|(count, _)| *count += n)
            .or_insert_with(|| (n, example()));
    }

    pub fn merge(&mut self, other: Failures) {
        for (key, (n, example)) in other.by_cause {
            self.add_n(key, n, || example);
        }
    }

    pub fn total(&self) -> u64 {
        self.by_cause.values().map(|(n, _)| n).sum()
    }

    /// (cause, count, first message), by cause.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64, &str)> {
        self.by_cause
            .iter()
            .map(|(k, (n, e))| (k.as_str(), *n, e.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.by_cause.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable() {
        assert_eq!(Fail::Refused.key(), "refused");
        assert_eq!(Fail::Timeout("handshake").key(), "timeout_handshake");
        assert_eq!(Fail::HandshakeStatus(404).key(), "handshake_status_404");
        assert_eq!(
            Fail::PusherError(4001, "x".into()).key(),
            "pusher_error_4001"
        );
        assert_eq!(
            Fail::from_io(&io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            Fail::Refused
        );
        assert_eq!(
            Fail::Io(io::ErrorKind::PermissionDenied, String::new()).key(),
            "io_permission_denied"
        );
    }

    #[test]
    fn tally() {
        let mut a = Failures::default();
        a.add(&Fail::Refused);
        a.add(&Fail::Refused);
        let mut b = Failures::default();
        b.add(&Fail::Refused);
        b.add(&Fail::Eof);
        a.merge(b);
        assert_eq!(a.total(), 4);
        let rows: Vec<_> = a.iter().map(|(k, n, _)| (k.to_string(), n)).collect();
        assert_eq!(rows, vec![("eof".into(), 1), ("refused".into(), 3)]);
    }
}
