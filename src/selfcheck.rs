//! The start-up self-check (operations.md §8): the kernel settings that cap a busy
//! server, each logged in a line a person can act on. The open-files limit is checked
//! with the banner (`crate::limits`); this covers the listen backlog and the local
//! port range.

use crate::server::listener;

/// Below this accept-queue length a wave of reconnects (every client at once, after
/// a restart or a network blip) can overflow it; 4096 is the kernel default since 5.4.
const BACKLOG_ADVISED: u32 = 4096;
/// The kernel's default `ip_local_port_range` (32768–60999) holds 28,232 ports; a
/// narrower range means someone lowered it.
const PORTS_DEFAULT: u32 = 28_232;

/// Log the checks; called once at start, after the banner.
pub fn report() {
    let somaxconn = read_u32("/proc/sys/net/core/somaxconn");
    for (level, line) in backlog_lines(somaxconn, listener::backlog()) {
        level.log(&line);
    }
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| parse_port_range(&text));
    for (level, line) in port_range_lines(range) {
        level.log(&line);
    }
}

/// How loud a self-check line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Debug,
    Info,
    Warn,
}

impl Level {
    fn log(self, line: &str) {
        match self {
            Level::Debug => crate::debug!("{line}"),
            Level::Info => crate::info!("{line}"),
            Level::Warn => crate::warn!("{line}"),
        }
    }
}

/// The accept queue each listener gets is `min(requested, somaxconn)`.
fn backlog_lines(somaxconn: Option<u32>, requested: i32) -> Vec<(Level, String)> {
    let Some(somaxconn) = somaxconn else {
        return vec![(
            Level::Debug,
            format!("listen backlog {requested} requested (net.core.somaxconn unreadable)"),
        )];
    };
    let in_use = somaxconn.min(requested.max(0) as u32);
    let mut lines = vec![(
        Level::Info,
        format!("listen backlog {in_use} connections per shard (net.core.somaxconn = {somaxconn})"),
    )];
    if in_use < BACKLOG_ADVISED {
        lines.push((
            Level::Warn,
            format!(
                "a listen backlog of {in_use} can overflow when many clients reconnect at \
                 once (after a restart, a network blip): their connection attempts are then \
                 dropped and retried seconds later. Raise it: `sysctl -w \
                 net.core.somaxconn={BACKLOG_ADVISED}`, and keep it in \
                 /etc/sysctl.d/99-reverb-shard.conf (then restart reverb-shard)"
            ),
        ));
    }
    lines
}

/// `"32768\t60999\n"` → (32768, 60999).
fn parse_port_range(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split_whitespace().map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => Some((low, high)),
        _ => None,
    }
}

/// The range limits a reverse proxy on this machine (nginx), not reverb-shard itself:
/// each proxied connection takes one local port of the proxy towards our address, so
/// the operator only cares when a proxy sits in front. Logged at debug level (spec),
/// with a warning only when the range was narrowed below the kernel's default.
fn port_range_lines(range: Option<(u32, u32)>) -> Vec<(Level, String)> {
    let Some((low, high)) = range else {
        return Vec::new();
    };
    let ports = high - low + 1;
    let mut lines = vec![(
        Level::Debug,
        format!(
            "local port range {low}-{high} (net.ipv4.ip_local_port_range): a proxy on this \
             machine can hold about {ports} connections to one reverb-shard address"
        ),
    )];
    if ports < PORTS_DEFAULT {
        lines.push((
            Level::Warn,
            format!(
                "net.ipv4.ip_local_port_range is {low}-{high}: a reverse proxy on this machine \
                 (nginx) can open only about {ports} connections to reverb-shard. Widen it, e.g. \
                 `sysctl -w net.ipv4.ip_local_port_range=\"1024 65000\"` (keep it in \
                 /etc/sysctl.d/), or spread the proxy over several upstream addresses or nodes"
            ),
        ));
    }
    lines
}

fn read_u32(path: &str) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(lines: &[(Level, String)]) -> Vec<Level> {
        lines.iter().map(|(l, _)| *l).collect()
    }

    #[test]
    fn backlog_is_capped_by_somaxconn_and_warned_about_when_small() {
        let ok = backlog_lines(Some(4096), 4096);
        assert_eq!(levels(&ok), vec![Level::Info]);
        assert!(ok[0].1.contains("listen backlog 4096"), "{ok:?}");
        let small = backlog_lines(Some(128), 4096);
        assert_eq!(levels(&small), vec![Level::Info, Level::Warn]);
        assert!(small[0].1.contains("listen backlog 128"), "{small:?}");
        assert!(small[1].1.contains("net.core.somaxconn=4096"), "{small:?}");
        assert_eq!(levels(&backlog_lines(None, 4096)), vec![Level::Debug]);
    }

    #[test]
    fn port_range_is_debug_unless_narrowed() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range(""), None);
        let default = port_range_lines(Some((32768, 60999)));
        assert_eq!(levels(&default), vec![Level::Debug]);
        assert!(
            default[0].1.contains("about 28232 connections"),
            "{default:?}"
        );
        let narrow = port_range_lines(Some((50000, 60000)));
        assert_eq!(levels(&narrow), vec![Level::Debug, Level::Warn]);
        assert!(
            narrow[1].1.contains("about 10001 connections"),
            "{narrow:?}"
        );
        assert!(port_range_lines(None).is_empty());
    }
}
