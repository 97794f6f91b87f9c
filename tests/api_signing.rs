//! Request authentication of the HTTP API (http-api.md §3): the spec's worked examples,
//! every way a signature fails (401 texts), the query rules (decoding, lists, repeated
//! keys, byte-order sort, unsigned keys, server-computed body_md5), reverb-shard's
//! auth_key and timestamp checks and their switch, and signing under a path prefix.

mod support;

use serde_json::json;
use support::http_api::*;
use support::{app_config, channel_auth, TestServer, APP_ID, APP_KEY};

const BAD_SIGNATURE: &str = "Authentication signature invalid.";
const EXPIRED: &str =
    "Timestamp expired: auth_timestamp must be within 600 seconds of server time.";

fn no_limits() -> TestServer {
    TestServer::start(&server_config("pusher_limits = false"), 1)
}

fn channels(server: &TestServer, signer: &Signer) -> support::raw::HttpResponse {
    call_signed(server, signer, "GET", &app_path("/channels"), &[], "")
}

// ---------------------------------------------------------------- worked examples

#[test]
fn the_worked_post_example_is_accepted_byte_for_byte() {
    let server = no_limits();
    let (mut sub, id) = server.connect_established();
    subscribe(&mut sub, &id, "private-orders.42");
    let body = r#"{"name":"order.shipped","channels":["private-orders.42"],"data":"{\"id\":42}"}"#;
    let target = "/apps/123456/events?auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0&body_md5=a2759d9532f4abbe833d25bdd454545f&auth_signature=990e61207a33d19c692d23a266decdfaa304ecdb61a8c4ce89a928e5bab444f3";
    assert_eq!(md5_hex(body.as_bytes()), "a2759d9532f4abbe833d25bdd454545f");
    let r = send_raw(
        &server,
        &request_bytes("POST", target, body.as_bytes(), true),
    );
    assert_json_raw(&r, 200, "{}");
    assert_eq!(
        next_text(&mut sub),
        r#"{"event":"order.shipped","data":"{\"id\":42}","channel":"private-orders.42"}"#
    );
}

#[test]
fn the_worked_get_example_is_accepted() {
    let server = no_limits();
    let target = "/apps/123456/channels?filter_by_prefix=presence-&info=user_count&auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0&auth_signature=9e8545747b6a301f343f9478318f39bdc5f1e7f0931f25452f105b4c8a4c29ed";
    let r = send_raw(&server, &request_bytes("GET", target, b"", true));
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
}

#[test]
fn the_worked_terminate_example_is_accepted() {
    let server = no_limits();
    let target = "/apps/123456/users/42/terminate_connections?auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0&body_md5=99914b932bd37a50b983c5e7c90ae93b&auth_signature=6f4cd5e03d488bed51d56e930ae2e15e15e41e4296cc3b13b007870998f29414";
    let r = send_raw(&server, &request_bytes("POST", target, b"{}", true));
    assert_json_raw(&r, 200, "{}");
}

#[test]
fn the_worked_examples_are_expired_with_pusher_limits_on() {
    let server = TestServer::start(&app_config(""), 1);
    let target = "/apps/123456/channels?filter_by_prefix=presence-&info=user_count&auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0&auth_signature=9e8545747b6a301f343f9478318f39bdc5f1e7f0931f25452f105b4c8a4c29ed";
    let r = send_raw(&server, &request_bytes("GET", target, b"", true));
    assert_text(&r, 401, EXPIRED);
}

// ---------------------------------------------------------------- signature failures

#[test]
fn a_wrong_secret_is_401() {
    let server = TestServer::start(&app_config(""), 1);
    let signer = Signer {
        secret: "not-the-secret".into(),
        ..Signer::default()
    };
    assert_text(&channels(&server, &signer), 401, BAD_SIGNATURE);
    let r = call_signed(
        &server,
        &signer,
        "POST",
        &app_path("/events"),
        &[],
        r#"{"name":"a","channel":"c","data":"x"}"#,
    );
    assert_text(&r, 401, BAD_SIGNATURE);
}

#[test]
fn a_missing_signature_is_401() {
    let server = TestServer::start(&app_config(""), 1);
    let target = format!(
        "/apps/{APP_ID}/channels?auth_key={APP_KEY}&auth_timestamp={}&auth_version=1.0",
        now()
    );
    let r = get_target(&server, &target);
    assert_text(&r, 401, BAD_SIGNATURE);
    // An empty signature.
    let r = get_target(&server, &format!("{target}&auth_signature="));
    assert_text(&r, 401, BAD_SIGNATURE);
}

fn get_target(server: &TestServer, target: &str) -> support::raw::HttpResponse {
    send_raw(server, &request_bytes("GET", target, b"", true))
}

#[test]
fn a_missing_signature_is_401_without_pusher_limits() {
    let server = no_limits();
    let r = get_target(&server, &format!("/apps/{APP_ID}/channels"));
    assert_text(&r, 401, BAD_SIGNATURE);
    let r = get_target(&server, &format!("/apps/{APP_ID}/channels?auth_signature="));
    assert_text(&r, 401, BAD_SIGNATURE);
}

#[test]
fn a_signature_given_as_a_list_is_401() {
    let server = TestServer::start(&app_config(""), 1);
    // The right signature, but as `auth_signature[]=…` (a list, not a string).
    let good = Signer::default().target("GET", &app_path("/channels"), &[], b"");
    let listed = good.replace("auth_signature=", "auth_signature[]=");
    let r = send_raw(&server, &request_bytes("GET", &listed, b"", true));
    assert_text(&r, 401, BAD_SIGNATURE);
    // The control: the same target as a plain key is accepted.
    let r = send_raw(&server, &request_bytes("GET", &good, b"", true));
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn a_signature_in_upper_case_or_with_a_key_prefix_is_401() {
    let server = TestServer::start(&app_config(""), 1);
    let good = Signer::default().target("GET", &app_path("/channels"), &[], b"");
    let (head, sig) = good.split_once("auth_signature=").unwrap();
    for bad in [
        format!("{head}auth_signature={}", sig.to_uppercase()),
        format!("{head}auth_signature={APP_KEY}:{sig}"),
        format!("{head}auth_signature={}", &sig[..63]),
    ] {
        let r = send_raw(&server, &request_bytes("GET", &bad, b"", true));
        assert_text(&r, 401, BAD_SIGNATURE);
    }
}

#[test]
fn a_tampered_body_is_401_because_the_server_computes_body_md5() {
    let server = TestServer::start(&app_config(""), 1);
    let signed = r#"{"name":"a","channel":"c","data":"1"}"#;
    let sent = r#"{"name":"a","channel":"c","data":"2"}"#;
    // Signed (and body_md5 sent) for one body, another body of the same length sent.
    let target = Signer::default().target("POST", &app_path("/events"), &[], signed.as_bytes());
    let r = send_raw(
        &server,
        &request_bytes("POST", &target, sent.as_bytes(), true),
    );
    assert_text(&r, 401, BAD_SIGNATURE);
    // A client that signs a wrong body_md5 fails as well.
    let signer = Signer {
        body_md5: Some(md5_hex(b"something else")),
        ..Signer::default()
    };
    let r = call_signed(&server, &signer, "POST", &app_path("/events"), &[], sent);
    assert_text(&r, 401, BAD_SIGNATURE);
    // A body sent with a signature made as if there were no body fails.
    let target = Signer::default().target("POST", &app_path("/events"), &[], b"");
    let r = send_raw(
        &server,
        &request_bytes("POST", &target, sent.as_bytes(), true),
    );
    assert_text(&r, 401, BAD_SIGNATURE);
}

#[test]
fn the_client_body_md5_is_ignored_when_the_signature_covers_the_real_one() {
    let server = TestServer::start(&app_config(""), 1);
    let body = r#"{"name":"a","channel":"c","data":"1"}"#;
    let target = Signer::default().target("POST", &app_path("/events"), &[], body.as_bytes());
    let real = md5_hex(body.as_bytes());
    // body_md5 dropped from the query: the server adds its own and the signature holds.
    let without = target.replace(&format!("&body_md5={real}"), "");
    assert!(!without.contains("body_md5"));
    let r = send_raw(
        &server,
        &request_bytes("POST", &without, body.as_bytes(), true),
    );
    assert_json_raw(&r, 200, "{}");
    // A wrong body_md5 in the query (not signed) is replaced by the server's too.
    let wrong = target.replace(&real, &"0".repeat(32));
    let r = send_raw(
        &server,
        &request_bytes("POST", &wrong, body.as_bytes(), true),
    );
    assert_json_raw(&r, 200, "{}");
}

#[test]
fn the_method_and_path_are_signed() {
    let server = TestServer::start(&app_config(""), 1);
    // Signed as a POST, sent as a GET.
    let target = Signer::default().target("POST", &app_path("/channels"), &[], b"");
    let r = send_raw(&server, &request_bytes("GET", &target, b"", true));
    assert_text(&r, 401, BAD_SIGNATURE);
    // Signed for another path.
    let signer = Signer {
        sign_path: Some(app_path("/connections")),
        ..Signer::default()
    };
    assert_text(&channels(&server, &signer), 401, BAD_SIGNATURE);
    // A signed parameter changed after signing.
    let target = Signer::default().target(
        "GET",
        &app_path("/channels"),
        &[("filter_by_prefix", "a")],
        b"",
    );
    let r = send_raw(
        &server,
        &request_bytes(
            "GET",
            &target.replace("filter_by_prefix=a", "filter_by_prefix=b"),
            b"",
            true,
        ),
    );
    assert_text(&r, 401, BAD_SIGNATURE);
    // An unsigned parameter added after signing.
    let r = send_raw(
        &server,
        &request_bytes("GET", &format!("{target}&info=occupied"), b"", true),
    );
    assert_text(&r, 401, BAD_SIGNATURE);
}

#[test]
fn the_path_is_signed_as_received_still_percent_encoded() {
    let server = TestServer::start(&app_config(""), 1);
    let raw_path = format!("/apps/{APP_ID}/channels/presence%2Droom");
    // Signed over the encoded path: accepted, and the channel name is decoded.
    let r = call_signed(&server, &Signer::default(), "GET", &raw_path, &[], "");
    assert_json_raw(&r, 200, r#"{"occupied":false}"#);
    // Signed over the decoded path: refused.
    let signer = Signer {
        sign_path: Some(format!("/apps/{APP_ID}/channels/presence-room")),
        ..Signer::default()
    };
    let r = call_signed(&server, &signer, "GET", &raw_path, &[], "");
    assert_text(&r, 401, BAD_SIGNATURE);
}

// ---------------------------------------------------------------- query rules

#[test]
fn values_are_signed_decoded() {
    let server = TestServer::start(&app_config(""), 1);
    let (mut c, id) = server.connect_established();
    subscribe(&mut c, &id, "news_x");
    subscribe(&mut c, &id, "newsy");
    // Sent `news%5F` and `a+b%21`, signed decoded (`news_`, `a b!`); the filter uses the
    // decoded value too.
    let params = [("filter_by_prefix", "news_"), ("note", "a b!")];
    let signed = Signer::default().target("GET", &app_path("/channels"), &params, b"");
    let sent = signed.replace("news_", "news%5F").replace("a b!", "a+b%21");
    let r = send_raw(&server, &request_bytes("GET", &sent, b"", true));
    assert_json_raw(&r, 200, r#"{"channels":{"news_x":{}}}"#);
    // Signed over the encoded form instead: refused.
    let params = [("filter_by_prefix", "news%5F"), ("note", "a+b%21")];
    let wrong = Signer::default().target("GET", &app_path("/channels"), &params, b"");
    let r = send_raw(&server, &request_bytes("GET", &wrong, b"", true));
    assert_text(&r, 401, BAD_SIGNATURE);
}

#[test]
fn a_list_parameter_is_signed_joined_with_commas_and_used_as_a_list() {
    let server = TestServer::start(&app_config(""), 1);
    let (mut c, id) = server.connect_established();
    subscribe(&mut c, &id, "orders");
    // Signed as `info=subscription_count,user_count`, sent as `info[]=…&info[]=…`.
    let signed = Signer::default().target(
        "GET",
        &app_path("/channels/orders"),
        &[("info", "subscription_count,user_count")],
        b"",
    );
    let sent = signed.replace(
        "info=subscription_count,user_count",
        "info[]=subscription_count&info[]=user_count",
    );
    let r = send_raw(&server, &request_bytes("GET", &sent, b"", true));
    assert_json_raw(&r, 200, r#"{"occupied":true,"subscription_count":1}"#);
}

#[test]
fn a_repeated_plain_key_keeps_the_last_value() {
    let server = TestServer::start(&app_config(""), 1);
    let (mut c, id) = server.connect_established();
    subscribe(&mut c, &id, "orders");
    subscribe(&mut c, &id, "news");
    let signed = Signer::default().target(
        "GET",
        &app_path("/channels"),
        &[("filter_by_prefix", "ord")],
        b"",
    );
    let sent = signed.replace(
        "filter_by_prefix=ord",
        "filter_by_prefix=new&filter_by_prefix=ord",
    );
    let r = send_raw(&server, &request_bytes("GET", &sent, b"", true));
    assert_json_raw(&r, 200, r#"{"channels":{"orders":{}}}"#);
}

#[test]
fn keys_are_sorted_by_byte_order_without_lowercasing() {
    let server = TestServer::start(&app_config(""), 1);
    // `Zed` < `auth_key` < `zed` in byte order; the helper signs with a byte-order sort.
    let r = call_signed(
        &server,
        &Signer::default(),
        "GET",
        &app_path("/channels"),
        &[("Zed", "1"), ("zed", "2"), ("_x", "3")],
        "",
    );
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
    // A signer that sorts keys case-insensitively gets a different string: refused.
    let ts = now().to_string();
    let query_lowered = format!("auth_key={APP_KEY}&auth_timestamp={ts}&auth_version=1.0&Zed=1");
    let sig = hmac_hex(
        support::APP_SECRET,
        &format!("GET\n{}\n{query_lowered}", app_path("/channels")),
    );
    let r = send_raw(
        &server,
        &request_bytes(
            "GET",
            &format!(
                "{}?{query_lowered}&auth_signature={sig}",
                app_path("/channels")
            ),
            b"",
            true,
        ),
    );
    assert_text(&r, 401, BAD_SIGNATURE);
}

#[test]
fn app_id_app_key_and_channel_name_parameters_are_not_signed() {
    let server = TestServer::start(&app_config(""), 1);
    let target = Signer::default().target("GET", &app_path("/channels"), &[], b"");
    let r = send_raw(
        &server,
        &request_bytes(
            "GET",
            &format!("{target}&appId=1&appKey=k&channelName=c"),
            b"",
            true,
        ),
    );
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
}

#[test]
fn auth_version_only_enters_the_signed_string() {
    let server = TestServer::start(&app_config(""), 1);
    let signer = Signer {
        version: "9.9".into(),
        ..Signer::default()
    };
    assert_eq!(channels(&server, &signer).status, 200);
}

// ---------------------------------------------------------------- key and timestamp

#[test]
fn a_wrong_or_missing_auth_key_is_401_unknown_auth_key() {
    let server = TestServer::start(&(app_config("") + OTHER_APP), 1);
    // Signed correctly (the secret is right) but for another key, even another app's.
    for key in ["nope", "other-key", ""] {
        let signer = Signer {
            key: key.into(),
            ..Signer::default()
        };
        assert_text(&channels(&server, &signer), 401, "Unknown auth_key.");
    }
    let target = format!(
        "/apps/{APP_ID}/channels?auth_timestamp={}&auth_version=1.0&auth_signature=x",
        now()
    );
    let r = send_raw(&server, &request_bytes("GET", &target, b"", true));
    assert_text(&r, 401, "Unknown auth_key.");
}

#[test]
fn a_timestamp_more_than_600_seconds_off_is_401_expired() {
    let server = TestServer::start(&app_config(""), 1);
    for timestamp in [now() - 700, now() + 700, 0, 1_700_000_000] {
        let signer = Signer {
            timestamp,
            ..Signer::default()
        };
        assert_text(&channels(&server, &signer), 401, EXPIRED);
    }
    // Within the window (with a wide margin) both ways.
    for timestamp in [now() - 500, now() + 500] {
        let signer = Signer {
            timestamp,
            ..Signer::default()
        };
        assert_eq!(channels(&server, &signer).status, 200);
    }
    // Missing or not a number.
    for ts in ["", "abc", "1e9"] {
        let pairs = format!("auth_key={APP_KEY}&auth_timestamp={ts}&auth_version=1.0");
        let sig = hmac_hex(
            support::APP_SECRET,
            &format!("GET\n{}\n{pairs}", app_path("/channels")),
        );
        let target = format!("{}?{pairs}&auth_signature={sig}", app_path("/channels"));
        let r = send_raw(&server, &request_bytes("GET", &target, b"", true));
        assert_text(&r, 401, EXPIRED);
    }
}

#[test]
fn without_pusher_limits_key_and_timestamp_are_not_checked() {
    let server = no_limits();
    let signer = Signer {
        key: "anything".into(),
        timestamp: 12345,
        ..Signer::default()
    };
    assert_json_raw(&channels(&server, &signer), 200, r#"{"channels":{}}"#);
    // The signature itself is still checked.
    let signer = Signer {
        secret: "wrong".into(),
        ..signer
    };
    assert_text(&channels(&server, &signer), 401, BAD_SIGNATURE);
}

#[test]
fn pusher_limits_can_be_switched_off_by_the_environment() {
    let server = TestServer::builder()
        .env("REVERB_SHARD_PUSHER_LIMITS", "false")
        .start();
    let signer = Signer {
        timestamp: 1,
        ..Signer::default()
    };
    assert_eq!(channels(&server, &signer).status, 200);
}

#[test]
fn another_apps_secret_does_not_sign_for_this_app() {
    let server = TestServer::start(&(app_config("") + OTHER_APP), 1);
    let signer = Signer {
        secret: "other-secret".into(),
        ..Signer::default()
    };
    assert_text(&channels(&server, &signer), 401, BAD_SIGNATURE);
    // The other app with its own credentials is fine.
    let signer = Signer {
        key: "other-key".into(),
        secret: "other-secret".into(),
        ..Signer::default()
    };
    let r = call_signed(&server, &signer, "GET", "/apps/654321/channels", &[], "");
    assert_json_raw(&r, 200, r#"{"channels":{}}"#);
}

// ---------------------------------------------------------------- prefix

fn prefixed(server: &TestServer, sign_path: Option<&str>) -> support::raw::HttpResponse {
    let signer = Signer {
        sign_path: sign_path.map(str::to_string),
        ..Signer::default()
    };
    call_signed(
        server,
        &signer,
        "GET",
        &format!("/ws/apps/{APP_ID}/channels"),
        &[],
        "",
    )
}

fn check_prefix_rules(server: &TestServer) {
    let stripped = app_path("/channels");
    let full = format!("/ws{stripped}");
    assert_json_raw(
        &prefixed(server, Some(&stripped)),
        200,
        r#"{"channels":{}}"#,
    );
    assert_json_raw(&prefixed(server, Some(&full)), 200, r#"{"channels":{}}"#);
    assert_text(
        &prefixed(server, Some(&format!("/other{stripped}"))),
        401,
        BAD_SIGNATURE,
    );
    // Without the prefix the route does not exist.
    let r = api(server, "GET", "/channels", &[], "");
    assert_text(&r, 404, "Not found.");
    // A trigger under the prefix, signed over the stripped path, reaches subscribers.
    let mut sub = support::Client::connect(
        &server.url("/ws/app/app-key?protocol=7&client=js&version=8.4.0&flash=false"),
        &[],
    );
    let id = sub.established();
    subscribe(&mut sub, &id, "orders");
    let body = json!({"name":"e","channel":"orders","data":"x"}).to_string();
    let r = call_signed(
        server,
        &Signer {
            sign_path: Some(app_path("/events")),
            ..Signer::default()
        },
        "POST",
        &format!("/ws{}", app_path("/events")),
        &[],
        &body,
    );
    assert_json_raw(&r, 200, "{}");
    assert_eq!(sub.recv_json()["event"], "e");
}

#[test]
fn under_a_cli_prefix_both_stripped_and_full_path_signatures_are_accepted() {
    let server = TestServer::builder().arg("--path").arg("ws").start();
    check_prefix_rules(&server);
}

#[test]
fn under_a_config_prefix_both_stripped_and_full_path_signatures_are_accepted() {
    let server = TestServer::start(&server_config("path = \"/ws\""), 1);
    check_prefix_rules(&server);
}

#[test]
fn a_private_channel_auth_is_not_an_api_signature() {
    // The channel-auth HMAC (websocket.md §8.1) over another string never passes here.
    let server = TestServer::start(&app_config(""), 1);
    let sig = channel_auth("1.1", "private-a", None);
    let target = format!(
        "/apps/{APP_ID}/channels?auth_key={APP_KEY}&auth_timestamp={}&auth_version=1.0&auth_signature={}",
        now(),
        sig.split_once(':').unwrap().1
    );
    let r = send_raw(&server, &request_bytes("GET", &target, b"", true));
    assert_text(&r, 401, BAD_SIGNATURE);
}
