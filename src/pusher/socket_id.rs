//! Socket ids: `{A}.{B}`, the format every Pusher SDK validates (`^\d+\.\d+$`).
//!
//! A is random in 1..=1,000,000,000 like Reverb's; B = random(1..=999,999) × 1000 +
//! shard index, so any shard can tell from an id which shard owns the socket and route
//! per-socket work there directly. The owning shard keeps its live ids unique.

use std::fmt;

/// Shard indexes must fit in B's last three digits.
pub const MAX_SHARDS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    a: u32,
    b: u32,
}

impl SocketId {
    /// A fresh random id owned by `shard`.
    pub fn random(shard: usize) -> SocketId {
        assert!(shard < MAX_SHARDS, "at most {MAX_SHARDS} shards");
        let mut bytes = [0u8; 8];
        getrandom::getrandom(&mut bytes).expect("the OS random source failed");
        let r1 = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let r2 = u32::from_le_bytes(bytes[4..].try_into().unwrap());
        let a = 1 + r1 % 1_000_000_000;
        let b = (1 + r2 % 999_999) * 1000 + shard as u32;
        SocketId { a, b }
    }

    /// The shard that owns this socket.
    pub fn shard(&self) -> usize {
        (self.b % 1000) as usize
    }

    /// Parse `A.B` (what clients and the HTTP API send back to us).
    pub fn parse(s: &str) -> Option<SocketId> {
        let (a, b) = s.split_once('.')?;
        let digits = |p: &str| {
            !p.is_empty()
                && p.bytes().all(|c| c.is_ascii_digit())
                && !(p.len() > 1 && p.starts_with('0'))
        };
        if !digits(a) || !digits(b) {
            return None;
        }
        Some(SocketId {
            a: a.parse().ok()?,
            b: b.parse().ok()?,
        })
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.a, self.b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_owner() {
        for shard in [0, 1, 7, 999] {
            let id = SocketId::random(shard);
            let text = id.to_string();
            let (a, b) = text.split_once('.').unwrap();
            assert!(!a.starts_with('0') && !b.starts_with('0'), "{text}");
            let a: u64 = a.parse().unwrap();
            let b: u64 = b.parse().unwrap();
            assert!((1..=1_000_000_000).contains(&a));
            assert!((1000..1_000_000_000).contains(&b));
            assert_eq!(id.shard(), shard);
            assert_eq!(SocketId::parse(&text), Some(id));
        }
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "", "1", "1.", ".1", "a.1", "1.2.3", "-1.2", "01.2", "1.02", "1 .2",
        ] {
            assert_eq!(SocketId::parse(bad), None, "{bad}");
        }
    }
}
