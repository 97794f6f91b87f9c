//! One Redis connection on a glommio executor: connect with a deadline, authenticate,
//! send commands and read reply frames. Pub/sub uses two of these per process.

use std::io;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::resp::{self, Frame, FrameReader};
use crate::config::RedisEndpoint;

/// How long a connect (TCP + AUTH) may take before it counts as a failed attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RedisConn {
    stream: TcpStream,
    reader: FrameReader,
    read_buf: Vec<u8>,
}

fn broken(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

impl RedisConn {
    /// Connect and authenticate (`AUTH [user] password` when a password is set).
    pub async fn connect(endpoint: &RedisEndpoint) -> io::Result<RedisConn> {
        if endpoint.tls {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TLS to Redis (rediss://, tls://) is not supported; use a private network or a local TLS tunnel (e.g. stunnel)",
            ));
        }
        let addr = format!("{}:{}", endpoint.host, endpoint.port);
        let connecting = async {
            let stream = TcpStream::connect(addr.as_str()).await?;
            let _ = stream.set_nodelay(true);
            let mut conn = RedisConn {
                stream,
                reader: FrameReader::default(),
                read_buf: vec![0; 16 * 1024],
            };
            if let Some(password) = &endpoint.password {
                let mut args: Vec<&[u8]> = vec![b"AUTH"];
                if let Some(user) = &endpoint.username {
                    args.push(user.as_bytes());
                }
                args.push(password.as_bytes());
                match conn.call(&args).await? {
                    Frame::SimpleString(_) => {}
                    Frame::Error(e) => return Err(broken(format!("AUTH refused: {e}"))),
                    other => return Err(broken(format!("unexpected AUTH reply {other:?}"))),
                }
            }
            Ok(conn)
        };
        match crate::connection::accept::with_timeout(CONNECT_TIMEOUT, connecting).await {
            Some(result) => result,
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no answer from {addr} within {}s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// Send already-encoded commands.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// The next frame from the server; an error when the connection is gone.
    pub async fn read_frame(&mut self) -> io::Result<Frame> {
        loop {
            if let Some(frame) = self.reader.next_frame().map_err(|e| broken(e.0))? {
                return Ok(frame);
            }
            let n = self.stream.read(&mut self.read_buf).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "Redis closed the connection",
                ));
            }
            self.reader.push(&self.read_buf[..n]);
        }
    }

    /// One command, one reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> io::Result<Frame> {
        let mut out = Vec::new();
        resp::command(args, &mut out);
        self.send(&out).await?;
        self.read_frame().await
    }
}
