//! Where the load goes: `ws://HOST:PORT[/PREFIX]` (WebSocket) and
//! `http://HOST:PORT[/PREFIX]` (HTTP API) endpoints, parsed from the flags and resolved
//! once before the run.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// A `ws://` endpoint; the WebSocket path is `{prefix}/app/{key}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsTarget {
    pub endpoint: Endpoint,
}

/// An `http://` endpoint; API paths are `{prefix}/apps/{id}/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub endpoint: Endpoint,
}

/// Host, port and route prefix of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As written in the URL (brackets kept for IPv6), for the Host header.
    pub host: String,
    pub port: u16,
    /// "" or "/segment[/segment]", no trailing slash.
    pub prefix: String,
}

impl WsTarget {
    pub fn parse(s: &str) -> Result<WsTarget, String> {
        if s.starts_with("wss://") {
            return Err(format!(
                "`{s}`: wss:// is not supported (the bench client speaks plain TCP); point it \
                 at the server's ws:// listener or at the plain side of the TLS proxy"
            ));
        }
        let rest = s.strip_prefix("ws://").ok_or_else(|| {
            format!("`{s}` is not a WebSocket URL: write ws://HOST:PORT[/PREFIX]")
        })?;
        Ok(WsTarget {
            endpoint: Endpoint::parse(s, rest, 80)?,
        })
    }

    /// The same server's HTTP API endpoint (same host, port and prefix).
    pub fn api(&self) -> HttpTarget {
        HttpTarget {
            endpoint: self.endpoint.clone(),
        }
    }

    /// The request target of the handshake for an app key.
    pub fn path_for(&self, key: &str) -> String {
        format!(
            "{}/app/{key}?protocol=7&client=js&version=8.4.0&flash=false",
            self.endpoint.prefix
        )
    }
}

impl HttpTarget {
    pub fn parse(s: &str) -> Result<HttpTarget, String> {
        if s.starts_with("https://") {
            return Err(format!(
                "`{s}`: https:// is not supported (the bench client speaks plain TCP)"
            ));
        }
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| format!("`{s}` is not an HTTP URL: write http://HOST:PORT[/PREFIX]"))?;
        Ok(HttpTarget {
            endpoint: Endpoint::parse(s, rest, 80)?,
        })
    }
}

impl Endpoint {
    fn parse(whole: &str, rest: &str, default_port: u16) -> Result<Endpoint, String> {
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains('?') {
            return Err(format!(
                "`{whole}`: leave the query out (the tool adds what the protocol needs)"
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("`{whole}`: cannot read HOST:PORT in it"))?;
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{whole}`: `{p}` is not a port"))?,
            None => default_port,
        };
        let mut prefix = path.trim_end_matches('/').to_string();
        if prefix.ends_with("/app") || prefix.contains("/app/") {
            return Err(format!(
                "`{whole}`: give only the server's address and path prefix; the tool adds \
                 /app/{{key}} itself"
            ));
        }
        if prefix == "/" {
            prefix.clear();
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
            prefix,
        })
    }

    /// `host:port` for the Host header.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The first address the host resolves to.
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("cannot resolve {}: no address", self.host))
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let host = &authority[..=end];
        return match &authority[end + 1..] {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

impl fmt::Display for WsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ws://{}{}",
            self.endpoint.authority(),
            self.endpoint.prefix
        )
    }
}

impl fmt::Display for HttpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "http://{}{}",
            self.endpoint.authority(),
            self.endpoint.prefix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls() {
        let t = WsTarget::parse("ws://127.0.0.1:8080").unwrap();
        assert_eq!(t.endpoint.host, "127.0.0.1");
        assert_eq!(t.endpoint.port, 8080);
        assert_eq!(t.endpoint.prefix, "");
        assert_eq!(t.to_string(), "ws://127.0.0.1:8080");
        assert_eq!(
            t.path_for("k"),
            "/app/k?protocol=7&client=js&version=8.4.0&flash=false"
        );
        let t = WsTarget::parse("ws://localhost:6001/ws/").unwrap();
        assert_eq!(t.endpoint.prefix, "/ws");
        assert_eq!(t.api().to_string(), "http://localhost:6001/ws");
        let t = WsTarget::parse("ws://[::1]:9000").unwrap();
        assert_eq!(t.endpoint.host, "[::1]");
        assert_eq!(t.endpoint.resolve().unwrap().port(), 9000);
        assert_eq!(
            WsTarget::parse("ws://example.com").unwrap().endpoint.port,
            80
        );
        for bad in [
            "http://x:1",
            "wss://x:1",
            "ws://",
            "ws://x:0",
            "ws://x:port",
            "ws://x:1/app/key",
            "ws://x:1?protocol=7",
        ] {
            assert!(WsTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_urls() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/ws").unwrap();
        assert_eq!(t.endpoint.prefix, "/ws");
        assert!(HttpTarget::parse("ws://127.0.0.1:8080").is_err());
    }
}
