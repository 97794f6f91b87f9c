//! The Redis wire format (RESP2) through the `redis-protocol` crate: commands out as
//! arrays of bulk strings, replies in as frames cut from a growing read buffer.

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode;
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};

pub use redis_protocol::resp2::types::OwnedFrame as Frame;

/// Append one command (`PUBLISH channel message`, …) to `out`.
pub fn command(args: &[&[u8]], out: &mut Vec<u8>) {
    let frame = OwnedFrame::Array(
        args.iter()
            .map(|a| OwnedFrame::BulkString(a.to_vec()))
            .collect(),
    );
    let start = out.len();
    out.resize(start + frame.encode_len(false), 0);
    let written = encode(&mut out[start..], &frame, false).expect("buffer sized by encode_len");
    out.truncate(start + written);
}

/// Bytes read from a Redis connection, cut into frames as they complete.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

/// The server sent bytes that are not RESP2: the connection must be dropped.
#[derive(Debug)]
pub struct ProtocolError(pub String);

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if the buffer holds one.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        match decode(&self.buf) {
            Ok(Some((frame, used))) => {
                self.buf.drain(..used);
                Ok(Some(frame))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(ProtocolError(e.to_string())),
        }
    }
}

/// A bulk or simple string frame's bytes.
pub fn bytes_of(frame: &Frame) -> Option<&[u8]> {
    match frame {
        Frame::BulkString(b) | Frame::SimpleString(b) => Some(b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_an_array_of_bulk_strings() {
        let mut out = Vec::new();
        command(&[b"PUBLISH", b"reverb", b"{}"], &mut out);
        assert_eq!(out, b"*3\r\n$7\r\nPUBLISH\r\n$6\r\nreverb\r\n$2\r\n{}\r\n");
    }

    #[test]
    fn frames_are_cut_as_they_complete() {
        let mut reader = FrameReader::default();
        reader.push(b"*3\r\n$7\r\nmessage\r\n$6\r\nreverb\r\n$2\r\n{");
        assert!(reader.next_frame().unwrap().is_none());
        reader.push(b"}\r\n:2\r\n");
        let Some(Frame::Array(parts)) = reader.next_frame().unwrap() else {
            panic!("expected an array");
        };
        assert_eq!(bytes_of(&parts[2]), Some(&b"{}"[..]));
        assert!(matches!(
            reader.next_frame().unwrap(),
            Some(Frame::Integer(2))
        ));
        assert!(reader.next_frame().unwrap().is_none());
        reader.push(b"?bad\r\n");
        assert!(reader.next_frame().is_err());
    }
}
