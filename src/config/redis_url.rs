//! The Redis target of scaling (config.md §1.1): `REDIS_URL` / `[scaling.redis] url` has
//! the form `redis://[user][:password]@host[:port][/db]` (`rediss://` or `tls://` for
//! TLS); the parts it contains override the separate host/port/username/password/database
//! settings, as Laravel's URL parser does.

use super::RedisConfig;

/// The effective Redis connection target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisEndpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub database: u32,
}

/// The parts of a Redis URL; `None` = not in the URL.
#[derive(Debug, Default, PartialEq, Eq)]
struct UrlParts {
    tls: bool,
    host: Option<String>,
    port: Option<u16>,
    username: Option<String>,
    password: Option<String>,
    database: Option<u32>,
}

pub(super) const URL_FORM: &str =
    "redis://[user][:password]@host[:port][/db] (rediss:// or tls:// for TLS)";

impl RedisConfig {
    /// The target: the separate fields, overridden by the parts present in `url`.
    /// Fails only on a malformed `url` (which [`super::load`] rejects when scaling is on).
    pub fn endpoint(&self) -> Result<RedisEndpoint, String> {
        let mut e = RedisEndpoint {
            tls: false,
            host: self.host.clone(),
            port: self.port,
            username: self.username.clone(),
            password: self.password.clone(),
            database: self.database,
        };
        if let Some(url) = &self.url {
            let p = parse_url(url)?;
            e.tls = p.tls;
            e.host = p.host.unwrap_or(e.host);
            e.port = p.port.unwrap_or(e.port);
            e.username = p.username.or(e.username);
            e.password = p.password.or(e.password);
            e.database = p.database.unwrap_or(e.database);
        }
        Ok(e)
    }
}

fn parse_url(url: &str) -> Result<UrlParts, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("expected {URL_FORM}"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "redis" => false,
        "rediss" | "tls" => true,
        other => return Err(format!("unsupported scheme {other:?}: expected {URL_FORM}")),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut parts = UrlParts {
        tls,
        ..UrlParts::default()
    };
    if let Some(userinfo) = userinfo {
        let (user, pass) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        parts.username = Some(percent_decode(user)).filter(|s| !s.is_empty());
        parts.password = pass.map(percent_decode).filter(|s| !s.is_empty());
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in the host: expected {URL_FORM}"))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    parts.host = Some(percent_decode(host)).filter(|s| !s.is_empty());
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        parts.port = Some(
            port.parse::<u16>()
                .ok()
                .filter(|&p| p >= 1)
                .ok_or_else(|| format!("invalid port {port:?}: expected a port number 1-65535"))?,
        );
    }
    let db = path.trim_matches('/');
    if !db.is_empty() {
        parts.database = Some(db.parse::<u32>().map_err(|_| {
            format!("invalid database {db:?}: expected a Redis database number after the '/'")
        })?);
    }
    Ok(parts)
}

/// The URL with its password replaced by `***`, for messages.
pub(super) fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: Option<&str>) -> RedisConfig {
        RedisConfig {
            url: url.map(Into::into),
            host: "10.0.0.1".into(),
            port: 6380,
            username: Some("field-user".into()),
            password: Some("field-pass".into()),
            database: 4,
            timeout: 60,
        }
    }

    #[test]
    fn fields_without_url() {
        let e = cfg(None).endpoint().unwrap();
        assert_eq!(
            e,
            RedisEndpoint {
                tls: false,
                host: "10.0.0.1".into(),
                port: 6380,
                username: Some("field-user".into()),
                password: Some("field-pass".into()),
                database: 4
            }
        );
    }

    #[test]
    fn url_parts_override_fields() {
        let e = cfg(Some("rediss://u:p%40ss@redis.example:6390/2"))
            .endpoint()
            .unwrap();
        assert!(e.tls);
        assert_eq!(
            (e.host.as_str(), e.port, e.database),
            ("redis.example", 6390, 2)
        );
        assert_eq!(
            (e.username.as_deref(), e.password.as_deref()),
            (Some("u"), Some("p@ss"))
        );

        let e = cfg(Some("redis://:secret@h")).endpoint().unwrap();
        assert!(!e.tls);
        assert_eq!((e.host.as_str(), e.port, e.database), ("h", 6380, 4));
        assert_eq!(e.username.as_deref(), Some("field-user"));
        assert_eq!(e.password.as_deref(), Some("secret"));

        let e = cfg(Some("tls://[::1]:7000")).endpoint().unwrap();
        assert!(e.tls);
        assert_eq!((e.host.as_str(), e.port), ("::1", 7000));
    }

    #[test]
    fn malformed_urls() {
        assert!(cfg(Some("localhost:6379")).endpoint().is_err());
        assert!(cfg(Some("http://h"))
            .endpoint()
            .unwrap_err()
            .contains("unsupported scheme"));
        assert!(cfg(Some("redis://h:abc"))
            .endpoint()
            .unwrap_err()
            .contains("invalid port"));
        assert!(cfg(Some("redis://h/x"))
            .endpoint()
            .unwrap_err()
            .contains("invalid database"));
    }

    #[test]
    fn masking_hides_the_password() {
        assert_eq!(masked("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(masked("redis://h:1/0"), "redis://h:1/0");
    }
}
