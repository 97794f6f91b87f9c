//! TLS on the server's port (operations.md §5): `wss://` and `https://` against the real
//! binary with a throw-away CA made here (rcgen), clients that trust only that CA
//! (rustls), a stalled handshake, bad certificate files (exit code 2, named), an
//! encrypted key with its passphrase, and the Herd/Valet certificate lookup.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use support::http_api::{app_path, request_bytes, Signer};
use support::{app_config, TestServer, TestServerBuilder};

const READ_TIMEOUT: Duration = Duration::from_secs(5);

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A CA and a server certificate it signed, as PEM text.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    cert_pem: String,
    key: KeyPair,
}

impl Pki {
    /// A CA and a certificate for `localhost`, 127.0.0.1 and `extra_names`.
    fn new(extra_names: &[&str]) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "reverb-shard test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let mut pki = Pki {
            ca,
            ca_key,
            cert_pem: String::new(),
            key: KeyPair::generate().unwrap(),
        };
        pki.cert_pem = pki.sign(extra_names, &pki.key);
        pki
    }

    /// A certificate for `localhost`, 127.0.0.1 and `extra_names` with `key`, signed by
    /// the CA.
    fn sign(&self, extra_names: &[&str], key: &KeyPair) -> String {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        names.extend(extra_names.iter().map(|n| n.to_string()));
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "reverb-shard test");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.signed_by(key, &self.ca, &self.ca_key).unwrap().pem()
    }

    fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A rustls client that trusts only this CA.
    fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Write the certificate and key into `dir`; returns their paths.
    fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, self.key_pem()).unwrap();
        (cert, key)
    }
}

/// The demo app's config with a `[server.tls]` table holding `tls_lines`.
fn tls_config(tls_lines: &str) -> String {
    format!("{}\n[server.tls]\n{tls_lines}\n", app_config(""))
}

fn toml_path(p: &Path) -> String {
    // Debug quoting is TOML-compatible for the plain paths of a temp dir.
    format!("{:?}", p.display().to_string())
}

/// A server with TLS from `pki` (files in `dir`).
fn start_tls(pki: &Pki, dir: &Path) -> TestServer {
    let (cert, key) = pki.write(dir);
    TestServer::builder()
        .config(&tls_config(&format!(
            "local_cert = {}\nlocal_pk = {}",
            toml_path(&cert),
            toml_path(&key)
        )))
        .start()
}

/// A TLS connection to the server's port, checked against `name`.
fn tls_connect(config: &Arc<ClientConfig>, port: u16, name: &str) -> TlsStream {
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    let conn = ClientConnection::new(config.clone(), name).unwrap();
    let mut stream = StreamOwned::new(conn, tcp);
    // Complete the handshake now, so a failure shows here and not in the first read.
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS handshake");
    }
    stream
}

/// A `wss://` client that has read `connection_established`; returns the socket id.
fn wss_connect(
    config: &Arc<ClientConfig>,
    port: u16,
    name: &str,
) -> (WebSocket<TlsStream>, String) {
    let stream = tls_connect(config, port, name);
    let url = format!("wss://{name}:{port}/app/app-key?protocol=7&client=js&version=8.4.0");
    let request = url.into_client_request().unwrap();
    let (mut ws, _) = tungstenite::client(request, stream).expect("WebSocket handshake");
    let msg = recv_json(&mut ws);
    let (socket_id, _) = support::established_data(&msg);
    (ws, socket_id)
}

fn recv_json(ws: &mut WebSocket<TlsStream>) -> Value {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).unwrap(),
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
            Ok(other) => panic!("expected a text frame, got {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                    && Instant::now() < deadline => {}
            Err(e) => panic!("expected a text frame, got {e}"),
        }
    }
}

fn send_json(ws: &mut WebSocket<TlsStream>, value: &Value) {
    ws.send(Message::text(value.to_string())).expect("send");
}

fn subscribe(ws: &mut WebSocket<TlsStream>, channel: &str) {
    send_json(
        ws,
        &json!({"event": "pusher:subscribe", "data": {"channel": channel}}),
    );
    let msg = recv_json(ws);
    assert_eq!(
        msg["event"], "pusher_internal:subscription_succeeded",
        "{msg}"
    );
    assert_eq!(msg["channel"], channel, "{msg}");
}

/// One `https://` request with `Connection: close`; (status, body). The response must
/// end with TLS close_notify: rustls reports a bare TCP close as an error.
fn https(config: &Arc<ClientConfig>, port: u16, request: &[u8]) -> (u16, String) {
    let mut stream = tls_connect(config, port, "localhost");
    stream.write_all(request).expect("write request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("response ended by close_notify");
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn https_trigger(config: &Arc<ClientConfig>, port: u16, body: &Value) -> (u16, String) {
    let body = body.to_string();
    let target = Signer::default().target("POST", &app_path("/events"), &[], body.as_bytes());
    https(
        config,
        port,
        &request_bytes("POST", &target, body.as_bytes(), true),
    )
}

/// The event arrives on the `wss://` client after a signed `https://` trigger.
fn assert_trigger_reaches(config: &Arc<ClientConfig>, port: u16, ws: &mut WebSocket<TlsStream>) {
    let (status, body) = https_trigger(
        config,
        port,
        &json!({"name": "greeting", "channels": ["news"], "data": "{\"hello\":\"tls\"}"}),
    );
    assert_eq!((status, body.as_str()), (200, "{}"));
    let msg = recv_json(ws);
    assert_eq!(
        msg,
        json!({"event": "greeting", "channel": "news", "data": "{\"hello\":\"tls\"}"})
    );
}

#[test]
fn wss_and_https_share_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&[]);
    let server = start_tls(&pki, dir.path());
    // (The banner is recorded just after the port is reported: wait for it.)
    assert!(
        server.wait_for_log("Starting secure server on 127.0.0.1:", READ_TIMEOUT),
        "{:?}",
        server.logs()
    );
    let client = pki.client();

    let (mut ws, _) = wss_connect(&client, server.port, "localhost");
    subscribe(&mut ws, "news");
    assert_trigger_reaches(&client, server.port, &mut ws);

    let up = b"GET /up HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_eq!(
        https(&client, server.port, up),
        (200, r#"{"health":"OK"}"#.to_string())
    );

    // The port speaks only TLS: a plain HTTP request gets no HTTP answer.
    let mut plain = support::raw::connect(&server.addr());
    plain.write_all(up).unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP answered on the TLS port: {:?}",
        String::from_utf8_lossy(&answer)
    );

    // A WebSocket close ends with close_notify too: the client reads a clean end.
    ws.close(None).unwrap();
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                    && Instant::now() < deadline => {}
            Err(e) => panic!("expected a clean close, got {e}"),
        }
    }
    // After the Close frames: rustls reads 0 only after close_notify (a bare TCP close
    // is an UnexpectedEof error).
    let mut rest = [0u8; 64];
    assert_eq!(
        ws.get_mut()
            .read(&mut rest)
            .expect("close_notify after the Close frame"),
        0
    );
    assert!(server.stop().success());
}

#[test]
fn a_stalled_handshake_blocks_no_one_and_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&[]);
    let server = start_tls(&pki, dir.path());
    let client = pki.client();

    // Connected at the TCP level, then silent (no ClientHello), and one that sends
    // half a record header.
    let mut silent = TcpStream::connect(server.addr()).unwrap();
    let mut partial = TcpStream::connect(server.addr()).unwrap();
    partial.write_all(&[0x16, 0x03, 0x01]).unwrap();

    let (mut ws, _) = wss_connect(&client, server.port, "localhost");
    subscribe(&mut ws, "news");
    assert_trigger_reaches(&client, server.port, &mut ws);

    // The handshake deadline (10 s) closes both without an answer; the read timeout
    // only keeps a broken server from hanging the test.
    for stalled in [&mut silent, &mut partial] {
        stalled
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut byte = [0u8; 1];
        match stalled.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("a stalled handshake was not cut: {other:?}"),
        }
    }
    assert!(server.stop().success());
}

/// Run a server that must refuse to start; (exit code, output).
fn refused(builder: TestServerBuilder) -> (Option<i32>, String) {
    builder.run_to_exit()
}

#[test]
fn a_missing_certificate_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.pem");
    let (code, out) = refused(TestServer::builder().config(&tls_config(&format!(
        "local_cert = {}",
        toml_path(&missing)
    ))));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains(&missing.display().to_string()), "{out}");
    assert!(out.contains("local_cert"), "{out}");
}

#[test]
fn unusable_pem_files_are_configuration_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&[]);
    let (cert, key) = pki.write(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();

    // (local_cert, local_pk, the file and the setting the message must name)
    let cases = [
        (&garbage, &key, &garbage, "local_cert"),
        (&broken, &key, &broken, "local_cert"),
        (&cert, &garbage, &garbage, "local_pk"),
        // A certificate without a key in the same file.
        (&cert, &cert, &cert, "local_pk"),
        // A key that does not belong to the certificate.
        (&cert, &other_key, &other_key, "local_cert"),
    ];
    for (cert, key, named, setting) in cases {
        let (code, out) = refused(TestServer::builder().config(&tls_config(&format!(
            "local_cert = {}\nlocal_pk = {}",
            toml_path(cert),
            toml_path(key)
        ))));
        assert_eq!(code, Some(2), "{cert:?} {key:?}: {out}");
        assert!(
            out.contains(&named.display().to_string()) && out.contains(setting),
            "{cert:?} {key:?}: the message should name {named:?} and {setting}: {out}"
        );
    }
}

#[test]
fn certificate_and_key_in_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&[]);
    let both = dir.path().join("both.pem");
    std::fs::write(&both, format!("{}{}", pki.cert_pem, pki.key_pem())).unwrap();
    let server = TestServer::builder()
        .config(&tls_config(&format!("local_cert = {}", toml_path(&both))))
        .start();
    let (mut ws, _) = wss_connect(&pki.client(), server.port, "localhost");
    subscribe(&mut ws, "news");
}

#[test]
fn an_encrypted_key_opens_with_its_passphrase() {
    use pkcs8::pkcs5::pbes2;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&[]);
    let (cert, _) = pki.write(dir.path());
    let der = pki.key.serialize_der();
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7u8; 16]).unwrap();
    let encrypted = info
        .encrypt_with_params(params, "correct horse")
        .unwrap()
        .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .unwrap();
    let key = dir.path().join("encrypted.key");
    std::fs::write(&key, encrypted.as_bytes()).unwrap();
    let config = |passphrase: Option<&str>| {
        let mut lines = format!(
            "local_cert = {}\nlocal_pk = {}",
            toml_path(&cert),
            toml_path(&key)
        );
        if let Some(p) = passphrase {
            lines.push_str(&format!("\npassphrase = {p:?}"));
        }
        tls_config(&lines)
    };

    for (passphrase, expect) in [(None, "no passphrase"), (Some("wrong"), "decrypt")] {
        let (code, out) = refused(TestServer::builder().config(&config(passphrase)));
        assert_eq!(code, Some(2), "{out}");
        assert!(
            out.contains(&key.display().to_string()) && out.contains(expect),
            "{out}"
        );
    }

    let server = TestServer::builder()
        .config(&config(Some("correct horse")))
        .start();
    let (mut ws, _) = wss_connect(&pki.client(), server.port, "localhost");
    subscribe(&mut ws, "news");
}

#[test]
fn herd_valet_certificate_for_the_hostname() {
    let home = tempfile::tempdir().unwrap();
    let pki = Pki::new(&["shard.test"]);
    let certs = home.path().join(".config/valet/Certificates");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("shard.test.crt"), &pki.cert_pem).unwrap();
    std::fs::write(certs.join("shard.test.key"), pki.key_pem()).unwrap();

    let server = TestServer::builder()
        .env("HOME", &home.path().display().to_string())
        .arg("--hostname")
        .arg("shard.test")
        .start();
    assert!(
        server.wait_for_log("Starting secure server on", READ_TIMEOUT),
        "{:?}",
        server.logs()
    );
    let logs = server.logs().join("\n");
    assert!(
        logs.contains(&certs.join("shard.test.crt").display().to_string()),
        "the log should name the certificate used: {logs}"
    );
    let client = pki.client();
    let (mut ws, _) = wss_connect(&client, server.port, "shard.test");
    subscribe(&mut ws, "news");
    assert_trigger_reaches(&client, server.port, &mut ws);
    drop(ws);
    assert!(server.stop().success());

    // Another hostname has no certificate there: plain TCP, as with Reverb.
    let plain = TestServer::builder()
        .env("HOME", &home.path().display().to_string())
        .arg("--hostname")
        .arg("other.test")
        .start();
    assert!(plain.wait_for_log("Starting server on", READ_TIMEOUT));
    let logs = plain.logs().join("\n");
    assert!(
        logs.contains("Starting server on") && !logs.contains("secure"),
        "{logs}"
    );
    plain.connect_established();
}
