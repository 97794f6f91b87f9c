//! Connecting: the handshake, `connection_established`, socket ids, app lookup.

mod support;

use support::{TestServer, APP_KEY};

#[test]
fn connect_gets_connection_established_with_a_socket_id() {
    let server = TestServer::builder().start();
    let (mut client, socket_id) = server.connect_established();
    let (a, b) = socket_id.split_once('.').expect("A.B");
    assert!(
        a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok(),
        "{socket_id}"
    );
    client.assert_alive();
}

#[test]
fn unknown_app_key_gets_4001_and_a_close() {
    let server = TestServer::builder().start();
    let mut client = server.connect("no-such-key");
    assert_eq!(client.expect_error(4001), "Application does not exist");
    assert_eq!(
        client.expect_close(),
        (4001, "Application does not exist".to_string())
    );
    let _ = APP_KEY;
}
