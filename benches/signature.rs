//! Signature checks: what the server pays per authenticated subscribe and per HTTP API
//! request (HMAC-SHA256 with the app secret, lowercase hex, constant-time compare).
//!
//! - `signature/channel_auth_private`: `pusher::auth::verify` of a valid
//!   `key:signature` for `socket_id:private-channel`, exactly the check behind a
//!   `pusher:subscribe` to a private channel.
//! - `signature/channel_auth_presence`: the same for a presence channel, whose signed
//!   string also carries the ~100-byte `channel_data`.
//! - `signature/channel_auth_wrong`: a wrong signature of the right length (it costs
//!   the same as a right one: the HMAC is computed and compared in constant time).
//! - `signature/api_check_post_events`: `api::signature::check` of a signed
//!   `POST /apps/{id}/events` with a 200-byte body, the `pusher_limits` checks on (key,
//!   timestamp), as the HTTP API does before a trigger: `body_md5`, the sorted query,
//!   the signed string, the HMAC.
//! - `signature/api_check_get_channels`: the same for `GET /apps/{id}/channels` with
//!   two more parameters and no body.
//! - `signature/api_parse_and_check_post_events`: the query string parsed
//!   (`api::query::parse`) and then checked, as one request does.
//!
//! Run with `cargo bench --bench signature` (criterion's command-line options apply).

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use reverb_shard::api::query::parse;
use reverb_shard::api::signature::{check, signed_query, Signed};
use reverb_shard::app::Apps;
use reverb_shard::config::AppConfig;
use reverb_shard::pusher::auth::{sign, verify};

const APP_ID: &str = "123456";
const KEY: &str = "app-key";
const SECRET: &str = "7ad3773142a6692b25b8a3c1f0e9d2b4";
const SOCKET_ID: &str = "123456789.987654321";

fn channel_auth(c: &mut Criterion) {
    let mut group = c.benchmark_group("signature");
    let private = format!("{SOCKET_ID}:private-orders.42");
    let private_auth = format!("{KEY}:{}", sign(SECRET, &private));
    assert!(verify(SECRET, &private, &private_auth));
    group.bench_function("channel_auth_private", |b| {
        b.iter(|| {
            verify(
                black_box(SECRET),
                black_box(&private),
                black_box(&private_auth),
            )
        })
    });

    let channel_data =
        r#"{"user_id":"7","user_info":{"name":"Ada Lovelace","avatar":"/img/u/7.png"}}"#;
    let presence = format!("{SOCKET_ID}:presence-room.1:{channel_data}");
    let presence_auth = format!("{KEY}:{}", sign(SECRET, &presence));
    assert!(verify(SECRET, &presence, &presence_auth));
    group.bench_function("channel_auth_presence", |b| {
        b.iter(|| {
            verify(
                black_box(SECRET),
                black_box(&presence),
                black_box(&presence_auth),
            )
        })
    });

    let wrong = format!("{KEY}:{}", sign("another-secret", &private));
    assert!(!verify(SECRET, &private, &wrong));
    group.bench_function("channel_auth_wrong", |b| {
        b.iter(|| verify(black_box(SECRET), black_box(&private), black_box(&wrong)))
    });
    group.finish();
}

/// A query string as a Pusher server SDK signs it (`auth_signature` appended last).
fn signed_request(method: &str, path: &str, extra: &str, body: &[u8]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let query = format!("{extra}auth_key={KEY}&auth_timestamp={now}&auth_version=1.0");
    let to_sign = format!("{method}\n{path}\n{}", signed_query(&parse(&query), body));
    format!("{query}&auth_signature={}", sign(SECRET, &to_sign))
}

fn api_request(c: &mut Criterion) {
    let apps = Apps::new(&[AppConfig::new(APP_ID, KEY, SECRET)]);
    let app = apps.by_index(0);
    let mut group = c.benchmark_group("signature");

    let events_path = format!("/apps/{APP_ID}/events");
    let body = br#"{"name":"order.shipped","channels":["private-orders.42"],"data":"{\"id\":42,\"carrier\":\"dhl-express\",\"eta\":\"2026-11-27\",\"items\":[1,2,3],\"note\":\"leave it by the door.\"}","socket_id":"1.2"}"#;
    assert_eq!(body.len(), 200);
    let query = signed_request("POST", &events_path, "", body);
    let params = parse(&query);
    let post = Signed {
        method: "POST",
        raw_path: &events_path,
        prefix: "",
        params: &params,
        body,
    };
    assert_eq!(check(app, &post, true), Ok(()));
    group.bench_function("api_check_post_events", |b| {
        b.iter(|| check(black_box(app), black_box(&post), true))
    });
    group.bench_function("api_parse_and_check_post_events", |b| {
        b.iter(|| {
            let params = parse(black_box(&query));
            let request = Signed {
                method: "POST",
                raw_path: &events_path,
                prefix: "",
                params: &params,
                body,
            };
            check(app, &request, true)
        })
    });

    let channels_path = format!("/apps/{APP_ID}/channels");
    let query = signed_request(
        "GET",
        &channels_path,
        "filter_by_prefix=presence-&info=user_count&",
        b"",
    );
    let params = parse(&query);
    let get = Signed {
        method: "GET",
        raw_path: &channels_path,
        prefix: "",
        params: &params,
        body: b"",
    };
    assert_eq!(check(app, &get, true), Ok(()));
    group.bench_function("api_check_get_channels", |b| {
        b.iter(|| check(black_box(app), black_box(&get), true))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = channel_auth, api_request
}
criterion_main!(benches);
