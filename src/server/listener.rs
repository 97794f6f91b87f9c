//! The listening sockets: one per shard, all bound to the same address with
//! SO_REUSEPORT so the kernel spreads new connections over the shards.
//!
//! They are bound on the main thread before any shard starts, so a bad address or a
//! port in use is reported at once, with the address, and nothing half-starts.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

/// Bound, listening, non-blocking sockets for `shards` shards, and the address they
/// share (with the real port when 0 was asked for).
pub fn bind(host: &str, port: u16, shards: usize) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the host resolves to no address",
        )
    })?;
    if addr.port() != 0 {
        refuse_if_taken(addr)?;
    }
    let first = bind_one(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..shards {
        listeners.push(bind_one(addr)?);
    }
    Ok((listeners, addr))
}

/// SO_REUSEPORT would silently share the port with another server of the same user;
/// a plain bind first tells whether anything already listens there.
fn refuse_if_taken(addr: SocketAddr) -> io::Result<()> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())
}

/// One more listener in the `SO_REUSEPORT` group of `addr` (also used by a restarted
/// process that runs more shards than the sockets it inherited).
pub(crate) fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The kernel caps the backlog at net.core.somaxconn; ask for that much (4096, the
/// default since Linux 5.4, when it cannot be read). A wave of reconnects after a
/// restart lands here all at once.
pub(crate) fn backlog() -> i32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}
