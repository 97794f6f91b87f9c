//! A client socket, plain or TLS: what the request reader, the WebSocket session and
//! the HTTP answers read from and write to. The plain case is the bare glommio stream
//! behind one enum match; the TLS stream is boxed so that plain connections do not
//! carry rustls's state (about a kilobyte) in every `Rc<RefCell<Stream>>`.

use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Run the server side of a TLS handshake on `tcp`. Unbounded in time: the caller
    /// puts a deadline on it.
    pub async fn accept_tls(
        config: &Arc<rustls::ServerConfig>,
        tcp: TcpStream,
    ) -> io::Result<Stream> {
        let tls = futures_rustls::TlsAcceptor::from(config.clone())
            .accept(tcp)
            .await?;
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// Whether a completed `poll_write` may leave bytes behind that only a flush sends:
    /// rustls takes the data into its buffer even when the socket is full.
    #[inline]
    pub fn buffers_writes(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Plain(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.get_ref().0.as_raw_fd(),
        }
    }
}

impl AsyncRead for Stream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            // glommio writes straight to the socket: nothing to flush.
            Stream::Plain(_) => Poll::Ready(Ok(())),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    /// Ends our direction: TLS sends close_notify and flushes first; then the socket
    /// is shut down for writing (FIN), the read side stays open.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_stream_carries_no_tls_state() {
        // The TLS variant is boxed: a plain connection's stream stays the size of the
        // bare socket (plus at most the enum's tag).
        let (plain, ours) = (
            std::mem::size_of::<TcpStream>(),
            std::mem::size_of::<Stream>(),
        );
        assert!(
            ours <= plain + 8,
            "Stream is {ours} bytes, TcpStream {plain}"
        );
    }
}
