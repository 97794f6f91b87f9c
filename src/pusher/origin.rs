//! The `allowed_origins` check (websocket.md §3): the Origin's host matched against
//! whole-string, case-sensitive wildcard patterns where `*` matches any run.

/// Whether a connection with this `Origin` header (if any) may connect.
pub fn allowed(patterns: &[String], origin_header: Option<&str>) -> bool {
    if patterns.iter().any(|p| p == "*") {
        return true;
    }
    let host = origin_header.map(host_of).unwrap_or("");
    if host.is_empty() {
        return false;
    }
    patterns
        .iter()
        .any(|p| wildcard_match(p.as_bytes(), host.as_bytes()))
}

/// The host part of an origin the way a URL parser sees it: scheme, userinfo and port
/// dropped, IPv6 brackets kept. No scheme (or `null`) gives "".
pub fn host_of(origin: &str) -> &str {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return "";
    };
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
    {
        return "";
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return host_port.find(']').map_or("", |end| &host_port[..=end]);
    }
    host_port.split(':').next().unwrap_or("")
}

/// `*` matches any run of bytes (including none and dots); everything else is literal.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("https://app.example.com:8443"), "app.example.com");
        assert_eq!(host_of("http://localhost:5173"), "localhost");
        assert_eq!(host_of("http://[::1]:8080"), "[::1]");
        assert_eq!(host_of("https://user:pw@a.b"), "a.b");
        assert_eq!(host_of("example.com"), "");
        assert_eq!(host_of("null"), "");
    }

    #[test]
    fn spec_examples() {
        let exact = list(&["laravel.com"]);
        assert!(allowed(&exact, Some("https://laravel.com")));
        assert!(!allowed(&exact, Some("https://sub.laravel.com")));
        let wild = list(&["*.laravel.com"]);
        assert!(allowed(&wild, Some("https://a.laravel.com")));
        assert!(allowed(&wild, Some("https://a.b.laravel.com")));
        assert!(!allowed(&wild, Some("https://laravel.com")));
        assert!(allowed(
            &list(&["localhost"]),
            Some("http://localhost:5173")
        ));
        assert!(!allowed(
            &list(&["https://laravel.com"]),
            Some("https://laravel.com")
        ));
        assert!(!allowed(&exact, None));
        assert!(!allowed(&exact, Some("null")));
        assert!(allowed(&list(&["*"]), None));
        assert!(!allowed(
            &list(&["Laravel.com"]),
            Some("https://laravel.com")
        ));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"a*c", b"abbbc"));
        assert!(wildcard_match(b"a*", b"a"));
        assert!(!wildcard_match(b"a*c", b"abcd"));
        assert!(wildcard_match(b"*.*.com", b"x.y.com"));
    }
}
