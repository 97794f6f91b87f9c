//! An accepted socket's first steps: read HTTP requests, route them, and hand a
//! WebSocket upgrade over to the session. Any request, however malformed, gets a 4xx
//! and a closed socket; none can stall the shard (every read has a deadline).

use std::rc::Rc;
use std::time::Duration;

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::stream::Stream;
use crate::http::request::{read_request, ReadError, Request};
use crate::http::response::Response;
use crate::server::shard::ShardState;
use crate::ws::handshake;

/// How long a client may take to send a complete request head and body (slow-loris),
/// and, separately, to complete a TLS handshake.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle keep-alive HTTP connection stays open.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(30);
/// How long closing may wait for the peer to take our last bytes (TLS close_notify).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a request goes.
enum Route<'a> {
    Up,
    WebSocket {
        key: &'a str,
    },
    /// The HTTP API; the path after the server prefix.
    Api {
        rest: &'a str,
    },
    /// Prometheus metrics (`crate::metrics`).
    Metrics,
    NotFound,
}

pub async fn serve_socket(shard: Rc<ShardState>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    // For `/metrics`, which only loopback peers may read when no token is configured.
    let peer = tcp.peer_addr().ok().map(|a| a.ip());
    let mut stream = match &shard.tls {
        None => Stream::Plain(tcp),
        // A client that never finishes the handshake is dropped (the socket closed)
        // at the deadline, like a slow request.
        Some(tls) => match with_timeout(REQUEST_TIMEOUT, Stream::accept_tls(tls, tcp)).await {
            Some(Ok(stream)) => stream,
            Some(Err(_)) | None => return,
        },
    };
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        let limit = if first {
            REQUEST_TIMEOUT
        } else {
            KEEP_ALIVE_IDLE
        };
        let first_request = first;
        first = false;
        let max = shard.settings.max_request_size;
        let reading = with_timeout(limit, read_request(&mut stream, &mut buf, max));
        // A kept-alive API connection waiting for its next request is closed when the
        // process stops or hands over, so its client (a queue worker, say) reconnects to
        // the live process instead of triggering events on one that is draining.
        let idle_stop = async {
            if first_request {
                std::future::pending::<()>().await;
            }
            shard.stop.wait().await;
        };
        let read = futures_lite::future::or(async { Some(reading.await) }, async {
            idle_stop.await;
            None
        })
        .await;
        let Some(read) = read else { return };
        let request = match read {
            None => {
                return reply_and_close(&mut stream, Response::text(408, "Request timeout.")).await
            }
            Some(Err(ReadError::Closed)) => return,
            Some(Err(ReadError::TooLarge)) => {
                return reply_and_close(&mut stream, Response::text(413, "Payload too large."))
                    .await
            }
            Some(Err(ReadError::Malformed)) => {
                return reply_and_close(&mut stream, Response::text(400, "Bad request.")).await
            }
            Some(Err(ReadError::LengthRequired)) => {
                return reply_and_close(&mut stream, Response::text(411, "Length required.")).await
            }
            Some(Ok(request)) => request,
        };
        // Once stopping, every answer says `Connection: close` (see above).
        let mut close = request.wants_close() || shard.stop.fired();
        let response = match route(&shard.settings.path, request.path()) {
            Route::WebSocket { key } => match handshake::accept(&request) {
                Ok(switching) => {
                    if stream.write_all(&switching).await.is_err() || stream.flush().await.is_err()
                    {
                        return;
                    }
                    // The request buffer was sized for reads (4 KiB); an idle
                    // connection keeps only the bytes that followed the request.
                    let mut leftover = std::mem::take(&mut buf);
                    leftover.shrink_to_fit();
                    // The session runs as its own task, so this one (sized for the HTTP
                    // API's handlers) ends here instead of living as long as the
                    // WebSocket: several KiB less per idle connection.
                    let origin = request.header("origin");
                    super::session::start(shard, stream, key, origin, leftover);
                    return;
                }
                Err(refusal) => return reply_and_close(&mut stream, refusal).await,
            },
            Route::Up if request.method == "GET" || request.method == "HEAD" => {
                Response::json(200, r#"{"health":"OK"}"#)
            }
            Route::Up => Response::text(405, "Method not allowed.").with_header("Allow", "GET"),
            Route::Api { rest } => {
                let response = crate::api::handle(&shard, &request, rest).await;
                crate::metrics::count_api(&shard, rest, &response);
                response
            }
            Route::Metrics => match crate::metrics::serve(&shard, &request, peer).await {
                Some(response) => response,
                // Metrics off: an unknown path like any other.
                None => {
                    close = true;
                    Response::text(404, "Not found.")
                }
            },
            Route::NotFound => {
                // websocket.md §2: other paths get 404 and the socket is closed (a
                // WebSocket client that asked for an upgrade must not be left waiting).
                close = true;
                Response::text(404, "Not found.")
            }
        };
        if write_response(&mut stream, &request, &response, close)
            .await
            .is_err()
        {
            return;
        }
        if close {
            return close_stream(&mut stream).await;
        }
    }
}

/// Match a path against the routes under the server prefix.
fn route<'a>(prefix: &str, path: &'a str) -> Route<'a> {
    let Some(rest) = path.strip_prefix(prefix) else {
        return Route::NotFound;
    };
    if rest == "/up" {
        return Route::Up;
    }
    if rest == "/metrics" {
        return Route::Metrics;
    }
    if crate::api::routes::is_api_path(rest) {
        return Route::Api { rest };
    }
    match rest.strip_prefix("/app/") {
        Some(key) if !key.is_empty() && !key.contains('/') => Route::WebSocket { key },
        _ => Route::NotFound,
    }
}

async fn write_response(
    stream: &mut Stream,
    request: &Request,
    response: &Response,
    close: bool,
) -> std::io::Result<()> {
    let mut bytes = response.to_bytes(close);
    if request.method == "HEAD" {
        let head_len = bytes.len() - response.body.len();
        bytes.truncate(head_len);
    }
    stream.write_all(&bytes).await?;
    stream.flush().await
}

async fn reply_and_close(stream: &mut Stream, response: Response) {
    let _ = stream.write_all(&response.to_bytes(true)).await;
    close_stream(stream).await;
}

/// Shut down our direction (FIN; with TLS, close_notify first). A TLS peer that
/// reads nothing could hold the flush forever, hence the limit.
async fn close_stream(stream: &mut Stream) {
    let _ = with_timeout(CLOSE_TIMEOUT, stream.close()).await;
}

/// `Some(output)`, or `None` when `limit` passed first. (A plain fn around two async
/// blocks: an async fn would hold `fut` twice, and every session's state is sized for
/// its closing wait.)
pub fn with_timeout<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = T>,
) -> impl std::future::Future<Output = Option<T>> {
    futures_lite::future::or(async move { Some(fut.await) }, async move {
        glommio::timer::sleep(limit).await;
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("", "/up"), Route::Up));
        assert!(matches!(
            route("", "/app/abc"),
            Route::WebSocket { key: "abc" }
        ));
        assert!(matches!(route("", "/app/abc/"), Route::NotFound));
        assert!(matches!(route("", "/app/"), Route::NotFound));
        assert!(matches!(route("", "/app/a/b"), Route::NotFound));
        assert!(matches!(
            route("/ws", "/ws/app/abc"),
            Route::WebSocket { key: "abc" }
        ));
        assert!(matches!(route("/ws", "/app/abc"), Route::NotFound));
        assert!(matches!(route("/ws", "/ws/up"), Route::Up));
        assert!(matches!(route("", "/nope"), Route::NotFound));
        assert!(matches!(route("", "/metrics"), Route::Metrics));
        assert!(matches!(route("/ws", "/ws/metrics"), Route::Metrics));
        assert!(matches!(route("/ws", "/metrics"), Route::NotFound));
    }
}
