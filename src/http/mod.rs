//! HTTP/1.1 on the shared port: reading requests (httparse), writing responses.
//! Everything that is not a WebSocket session starts and ends here.

pub mod request;
pub mod response;
