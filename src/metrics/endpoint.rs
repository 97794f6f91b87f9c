//! `GET {prefix}/metrics`: who may scrape (a bearer token when `metrics_token` is set,
//! otherwise loopback peers only), and the answer, gathered from every shard with one
//! mesh round and rendered as Prometheus text.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::prometheus::{self, ProcessFigures};
use super::snapshot::ShardSnapshot;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::server::shard::ShardState;
use crate::server::ShardMsg;

/// How the endpoint is set up (from `[server] metrics`, `metrics_token`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `Some`: scrapers must send `Authorization: Bearer TOKEN` (from anywhere).
    /// `None`: only loopback peers may scrape.
    pub token: Option<String>,
}

/// The verdict on one scrape request.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// A token is configured and the request did not carry it.
    Unauthorized,
    /// No token is configured and the peer is not on loopback (or is a proxy on it).
    Forbidden,
}

impl Endpoint {
    /// `proxied`: the request names an original client (a reverse proxy on this host
    /// forwarded it), so its loopback peer address says nothing about who asked.
    pub fn check(
        &self,
        authorization: Option<&str>,
        peer: Option<IpAddr>,
        proxied: bool,
    ) -> Access {
        match &self.token {
            Some(token) => match authorization.and_then(bearer) {
                Some(given) if same_secret(given, token) => Access::Allowed,
                _ => Access::Unauthorized,
            },
            None if !proxied && peer.is_some_and(is_loopback) => Access::Allowed,
            None => Access::Forbidden,
        }
    }
}

/// Headers a reverse proxy adds to name the client it forwards for.
const FORWARDING_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// The credentials of `Bearer CREDENTIALS` (the scheme is case-insensitive).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// Constant-time comparison of digests, so neither the content nor the length of the
/// configured token leaks through timing.
fn same_secret(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

/// 127.0.0.0/8 and ::1, also when an IPv4 peer reaches a dual-stack socket as
/// `::ffff:127.x.y.z`.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Answer a request for `{prefix}/metrics`; `None` when the endpoint is off (the caller
/// answers 404 as for any unknown path).
pub async fn serve(
    state: &ShardState,
    request: &Request,
    peer: Option<IpAddr>,
) -> Option<Response> {
    let endpoint = state.metrics.endpoint()?;
    if request.method != "GET" && request.method != "HEAD" {
        return Some(Response::text(405, "Method not allowed.").with_header("Allow", "GET"));
    }
    let proxied = FORWARDING_HEADERS
        .iter()
        .any(|h| request.header(h).is_some());
    match endpoint.check(request.header("authorization"), peer, proxied) {
        Access::Allowed => {}
        Access::Unauthorized => {
            return Some(
                Response::text(401, "Unauthorized.").with_header("WWW-Authenticate", "Bearer"),
            )
        }
        Access::Forbidden => return Some(Response::text(403, "Forbidden.")),
    }
    // Every shard answers, or the scrape fails: a partial sum would look like a drop.
    let gathered = state
        .mesh
        .try_map_reduce(ShardMsg::MetricsSnapshot, Vec::new(), |mut all, answer| {
            if let ShardMsg::Metrics(snapshot) = answer {
                all.push(*snapshot);
            }
            all
        })
        .await;
    let Ok(mut shards) = gathered else {
        return Some(Response::text(503, "Server shutting down."));
    };
    shards.sort_by_key(|s: &ShardSnapshot| s.shard);
    let app_ids: Vec<&str> = state.apps.iter().map(|a| a.id()).collect();
    // Listing /proc/self/fd walks one entry per open socket: at a million connections
    // that is long enough to stall the shard, so it runs on the blocking-task pool.
    let process = glommio::executor()
        .spawn_blocking(ProcessFigures::now)
        .await;
    let text = prometheus::render(&app_ids, &shards, &process);
    Some(Response {
        status: 200,
        content_type: prometheus::CONTENT_TYPE,
        body: text.into_bytes(),
        extra_headers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn token_when_set_from_anywhere() {
        let e = Endpoint {
            token: Some("s3cret".into()),
        };
        assert_eq!(
            e.check(Some("Bearer s3cret"), ip("203.0.113.9"), false),
            Access::Allowed
        );
        assert_eq!(
            e.check(Some("bearer  s3cret "), ip("127.0.0.1"), false),
            Access::Allowed
        );
        assert_eq!(
            e.check(Some("Bearer s3cre"), ip("127.0.0.1"), false),
            Access::Unauthorized
        );
        assert_eq!(
            e.check(Some("Basic s3cret"), ip("127.0.0.1"), false),
            Access::Unauthorized
        );
        assert_eq!(
            e.check(Some("Bearer"), ip("127.0.0.1"), false),
            Access::Unauthorized
        );
        // Loopback alone is not enough once a token is configured.
        assert_eq!(e.check(None, ip("127.0.0.1"), false), Access::Unauthorized);
    }

    #[test]
    fn loopback_only_without_a_token() {
        let e = Endpoint { token: None };
        for allowed in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(
                e.check(None, ip(allowed), false),
                Access::Allowed,
                "{allowed}"
            );
        }
        for refused in ["10.0.0.1", "192.0.2.1", "::ffff:10.0.0.1", "fe80::1", "::"] {
            assert_eq!(
                e.check(None, ip(refused), false),
                Access::Forbidden,
                "{refused}"
            );
        }
        assert_eq!(e.check(Some("Bearer x"), None, false), Access::Forbidden);
        // A proxy on this host forwarding someone else's request.
        assert_eq!(e.check(None, ip("127.0.0.1"), true), Access::Forbidden);
    }

    #[test]
    fn a_token_works_through_a_proxy() {
        let e = Endpoint {
            token: Some("t".into()),
        };
        assert_eq!(
            e.check(Some("Bearer t"), ip("127.0.0.1"), true),
            Access::Allowed
        );
    }
}
