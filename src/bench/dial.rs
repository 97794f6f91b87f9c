//! Opening TCP connections from a client executor: io_uring connect with a time limit,
//! or, with `--source-ips`, a socket bound to a chosen loopback source address first
//! (so the ephemeral ports of several addresses can be used).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd};
use std::time::{Duration, Instant};

use glommio::net::TcpStream;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::fail::Fail;

/// Source address number `i` of `n`: 127.0.0.1 .. 127.0.0.n, round-robin.
pub fn source_ip(i: usize, n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(n.max(1))) as u8)
}

/// Connect to `addr`, from `source` when given, within `limit`.
pub async fn dial(
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    limit: Duration,
) -> Result<TcpStream, Fail> {
    let stream = match source {
        None => TcpStream::connect_timeout(addr, limit)
            .await
            .map_err(|e| Fail::from_io(&std::io::Error::from(e)))?,
        Some(ip) => connect_from(ip, addr, limit).await?,
    };
    // Frames are small and latency is measured: never wait to coalesce them.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn connect_from(
    source: Ipv4Addr,
    addr: SocketAddr,
    limit: Duration,
) -> Result<TcpStream, Fail> {
    let io = |e: std::io::Error| Fail::from_io(&e);
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(io)?;
    // Let connect() pick the port per (source, destination) pair instead of bind()
    // reserving one per source address: many more connections per address.
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads one c_int from the pointer it is given.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    socket
        .bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(source), 0)))
        .map_err(io)?;
    socket.set_nonblocking(true).map_err(io)?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            wait_connected(&socket, limit).await?;
        }
        Err(e) => return Err(io(e)),
    }
    // SAFETY: the descriptor is owned by `socket` and handed over exactly once.
    Ok(unsafe { TcpStream::from_raw_fd(socket.into_raw_fd()) })
}

/// Wait for a non-blocking connect to finish. glommio has no public "writable" future,
/// so poll(2) with a zero timeout is asked at growing intervals; on loopback the
/// answer is almost always there on the first or second look.
async fn wait_connected(socket: &Socket, limit: Duration) -> Result<(), Fail> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(200);
    loop {
        let mut fd = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) };
        if ready > 0 {
            return match socket.take_error() {
                Ok(None) => Ok(()),
                Ok(Some(e)) | Err(e) => Err(Fail::from_io(&e)),
            };
        }
        if Instant::now() >= deadline {
            return Err(Fail::Timeout("connect"));
        }
        glommio::timer::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ips_round_robin() {
        assert_eq!(source_ip(0, 4), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source_ip(3, 4), Ipv4Addr::new(127, 0, 0, 4));
        assert_eq!(source_ip(4, 4), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source_ip(7, 1), Ipv4Addr::new(127, 0, 0, 1));
    }
}
