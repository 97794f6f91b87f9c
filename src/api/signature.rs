//! Request authentication (http-api.md §3): the Pusher signature over method, path and
//! sorted query, with `body_md5` computed by the server from the body it received.

use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

use super::query::Params;
use crate::app::App;
use crate::pusher::auth;

/// How far `auth_timestamp` may be from the server's clock (Pusher's rule).
pub const MAX_SKEW_SECS: i64 = 600;

/// Why a request is refused with 401; the text is the body.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    UnknownKey,
    Expired,
    BadSignature,
}

impl Refusal {
    pub fn text(&self) -> &'static str {
        match self {
            Refusal::UnknownKey => "Unknown auth_key.",
            Refusal::Expired => {
                "Timestamp expired: auth_timestamp must be within 600 seconds of server time."
            }
            Refusal::BadSignature => "Authentication signature invalid.",
        }
    }
}

/// Everything the check needs from the request.
pub struct Signed<'a> {
    pub method: &'a str,
    /// The path as received (still percent-encoded), without the query.
    pub raw_path: &'a str,
    /// The server's route prefix ("" or "/segment").
    pub prefix: &'a str,
    pub params: &'a Params,
    pub body: &'a [u8],
}

pub fn check(app: &App, request: &Signed<'_>, pusher_limits: bool) -> Result<(), Refusal> {
    if pusher_limits {
        let key = request.params.get("auth_key").and_then(|p| p.as_str());
        if key != Some(app.config.key.as_str()) {
            return Err(Refusal::UnknownKey);
        }
        let timestamp = request
            .params
            .get("auth_timestamp")
            .and_then(|p| p.as_str())
            .and_then(|t| t.parse::<i64>().ok());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        match timestamp {
            Some(t) if (now - t).abs() <= MAX_SKEW_SECS => {}
            _ => return Err(Refusal::Expired),
        }
    }
    let Some(given) = request
        .params
        .get("auth_signature")
        .and_then(|p| p.as_str())
    else {
        return Err(Refusal::BadSignature);
    };
    let query = signed_query(request.params, request.body);
    let stripped = request
        .raw_path
        .strip_prefix(request.prefix)
        .unwrap_or(request.raw_path);
    let mut paths = vec![stripped];
    if !request.prefix.is_empty() {
        paths.push(request.raw_path);
    }
    let ok = paths.into_iter().any(|path| {
        let message = format!("{}\n{}\n{}", request.method, path, query);
        auth::verify(&app.config.secret, &message, given) && !given.contains(':')
    });
    if ok {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

/// The query part of the signed string: parameters sorted by key without the ones
/// that are never signed, plus the server-computed `body_md5` for a non-empty body.
pub fn signed_query(params: &Params, body: &[u8]) -> String {
    let mut params = params.clone();
    for unsigned in [
        "auth_signature",
        "body_md5",
        "appId",
        "appKey",
        "channelName",
    ] {
        params.remove(unsigned);
    }
    if !body.is_empty() {
        params.insert("body_md5".into(), super::query::Param::One(md5_hex(body)));
    }
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.joined()))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn md5_hex(body: &[u8]) -> String {
    auth::hex(&Md5::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::query::parse;

    #[test]
    fn spec_worked_examples() {
        let body =
            br#"{"name":"order.shipped","channels":["private-orders.42"],"data":"{\"id\":42}"}"#;
        assert_eq!(md5_hex(body), "a2759d9532f4abbe833d25bdd454545f");
        let params =
            parse("auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0&body_md5=wrong");
        let query = signed_query(&params, body);
        assert_eq!(query, "auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0&body_md5=a2759d9532f4abbe833d25bdd454545f");
        assert_eq!(
            auth::sign("app-secret", &format!("POST\n/apps/123456/events\n{query}")),
            "990e61207a33d19c692d23a266decdfaa304ecdb61a8c4ce89a928e5bab444f3"
        );
        let params = parse("filter_by_prefix=presence-&info=user_count&auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0");
        assert_eq!(
            auth::sign(
                "app-secret",
                &format!("GET\n/apps/123456/channels\n{}", signed_query(&params, b""))
            ),
            "9e8545747b6a301f343f9478318f39bdc5f1e7f0931f25452f105b4c8a4c29ed"
        );
        let params = parse("auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0");
        assert_eq!(
            auth::sign(
                "app-secret",
                &format!(
                    "POST\n/apps/123456/users/42/terminate_connections\n{}",
                    signed_query(&params, b"{}")
                )
            ),
            "6f4cd5e03d488bed51d56e930ae2e15e15e41e4296cc3b13b007870998f29414"
        );
    }
}
