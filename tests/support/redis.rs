//! A real `redis-server` for the scaling tests: started on a free loopback port with
//! no persistence, killed when dropped; plus a tiny blocking client (RESP through the
//! `redis-protocol` crate) to publish raw envelopes and to watch the channel.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode;
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

/// Whether redis-server is installed; without it the scaling tests skip loudly,
/// except under CI (`.ci/run` installs it), where they fail.
pub fn available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is not installed (CI must install it: see .ci/run)"
        );
        eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_on(super::free_port())
    }

    /// Start on a given port (e.g. one a node is already trying to reach).
    pub fn start_on(port: u16) -> RedisServer {
        let mut server = RedisServer { child: None, port };
        server.restart();
        server
    }

    /// (Re)start on the same port.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut c) = RedisClient::connect(self.port) {
                if matches!(c.call(&["PING"]), OwnedFrame::SimpleString(_)) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kill it (SIGKILL: like a crash; pub/sub state is gone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A blocking RESP2 client for tests.
pub struct RedisClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RedisClient {
    pub fn connect(port: u16) -> std::io::Result<RedisClient> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(RedisClient {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, args: &[&str]) {
        let frame = OwnedFrame::Array(
            args.iter()
                .map(|a| OwnedFrame::BulkString(a.as_bytes().to_vec()))
                .collect(),
        );
        let mut out = vec![0; frame.encode_len(false)];
        encode(&mut out, &frame, false).unwrap();
        self.stream.write_all(&out).unwrap();
    }

    /// The next frame (panics after the read timeout).
    pub fn read(&mut self) -> OwnedFrame {
        loop {
            if let Some((frame, used)) = decode(&self.buf).unwrap() {
                self.buf.drain(..used);
                return frame;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read from redis");
            assert!(n > 0, "redis closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn call(&mut self, args: &[&str]) -> OwnedFrame {
        self.send(args);
        self.read()
    }

    /// PUBLISH; the number of subscribers that got it.
    pub fn publish(&mut self, channel: &str, message: &str) -> i64 {
        match self.call(&["PUBLISH", channel, message]) {
            OwnedFrame::Integer(n) => n,
            other => panic!("PUBLISH answered {other:?}"),
        }
    }

    /// SUBSCRIBE to `channel` (this client then only reads messages).
    pub fn subscribe(&mut self, channel: &str) {
        let reply = self.call(&["SUBSCRIBE", channel]);
        assert!(matches!(reply, OwnedFrame::Array(_)), "{reply:?}");
    }

    /// The next pub/sub message's payload, or None after `within`.
    pub fn next_message(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        self.stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        loop {
            if let Some((frame, used)) = decode(&self.buf).unwrap() {
                self.buf.drain(..used);
                if let OwnedFrame::Array(parts) = frame {
                    if let (Some(OwnedFrame::BulkString(kind)), Some(OwnedFrame::BulkString(p))) =
                        (parts.first(), parts.get(2))
                    {
                        if kind == b"message" {
                            return Some(String::from_utf8_lossy(p).into_owned());
                        }
                    }
                }
                continue;
            }
            if Instant::now() >= deadline {
                return None;
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    }
}
