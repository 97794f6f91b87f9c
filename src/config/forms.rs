//! The accepted forms of setting values, shared by the TOML reader and the environment
//! reader so that both accept the same values and describe them with the same words in
//! error messages ("expected …").

/// An integer setting: accepted range and how to describe it.
pub(super) struct IntForm {
    pub min: u64,
    pub max: u64,
    pub expected: &'static str,
}

impl IntForm {
    /// A TOML integer in range.
    pub fn accept_i64(&self, n: i64) -> Option<u64> {
        u64::try_from(n)
            .ok()
            .filter(|v| (self.min..=self.max).contains(v))
    }

    /// A decimal string (surrounding whitespace allowed) in range.
    pub fn accept_str(&self, s: &str) -> Option<u64> {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|v| (self.min..=self.max).contains(v))
    }
}

const BIG: u64 = i64::MAX as u64;

pub(super) const PORT: IntForm = IntForm {
    min: 0,
    max: 65535,
    expected: "a port number 0-65535 (0 = any free port)",
};
pub(super) const REMOTE_PORT: IntForm = IntForm {
    min: 1,
    max: 65535,
    expected: "a port number 1-65535",
};
pub(super) const BYTES: IntForm = IntForm {
    min: 1,
    max: BIG,
    expected: "a positive integer (bytes)",
};
pub(super) const POSITIVE_SECONDS: IntForm = IntForm {
    min: 1,
    max: BIG,
    expected: "a positive integer (seconds)",
};
pub(super) const SECONDS: IntForm = IntForm {
    min: 0,
    max: BIG,
    expected: "a whole number of seconds (0 or more)",
};
pub(super) const MAX_CONNECTIONS: IntForm = IntForm {
    min: 0,
    max: BIG,
    expected: "a whole number of connections (0 or more; leave it unset for no limit)",
};
pub(super) const ATTEMPTS: IntForm = IntForm {
    min: 0,
    max: u32::MAX as u64,
    expected: "a whole number of attempts 0-4294967295",
};
pub(super) const DATABASE: IntForm = IntForm {
    min: 0,
    max: u32::MAX as u64,
    expected: "a Redis database number (0 or more)",
};
pub(super) const APP_ID_INT: IntForm = IntForm {
    min: 0,
    max: BIG,
    expected: "a non-empty string such as \"123456\"",
};

pub(super) const BOOL: &str = "true or false";
pub(super) const CORES: &str = "\"auto\" or a whole number of shards >= 1";
pub(super) const RESTART_MODE: &str = "\"handover\" or \"exit\"";
pub(super) const PRESENCE_SCOPE: &str = "\"fleet\" or \"node\"";
pub(super) const PATH: &str = "a URL path prefix such as \"/ws\" (no spaces, '?' or '#')";

/// Environment booleans: `true`/`1`/`yes`/`on` and `false`/`0`/`no`/`off`
/// (case-insensitive; Laravel's `(true)`/`(false)` are mapped before this).
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Normalises a route prefix and rejects characters that cannot be part of one.
pub(super) fn parse_path(s: &str) -> Option<String> {
    let p = super::normalize_path(s);
    if p.chars().any(|c| c.is_whitespace() || c == '?' || c == '#') {
        None
    } else {
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_forms_check_ranges() {
        assert_eq!(PORT.accept_i64(0), Some(0));
        assert_eq!(PORT.accept_i64(65536), None);
        assert_eq!(PORT.accept_i64(-1), None);
        assert_eq!(REMOTE_PORT.accept_str("0"), None);
        assert_eq!(BYTES.accept_str(" 12 "), Some(12));
        assert_eq!(BYTES.accept_str("0"), None);
        assert_eq!(BYTES.accept_str("-5"), None);
        assert_eq!(BYTES.accept_str("1.5"), None);
        assert_eq!(ATTEMPTS.accept_str("4294967296"), None);
    }

    #[test]
    fn bools_and_paths() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_path("ws/"), Some("/ws".to_string()));
        assert_eq!(parse_path("/a b"), None);
        assert_eq!(parse_path("/ws?x"), None);
    }
}
