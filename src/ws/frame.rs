//! RFC 6455 frame codec, server side (spec websocket.md §15).
//!
//! The decoder turns masked client frames into complete messages and reports every
//! protocol rule it finds broken as a [`Violation`] that carries the exact close status to
//! send. The encoders produce the unmasked, unfragmented frames the server sends; they are
//! plain byte buffers so that a broadcast is encoded once and the bytes shared between all
//! the connections that receive it.
//!
//! Hand-written rather than taken from `tungstenite` because we need the encoded bytes of
//! one frame to be shareable, the exact close codes/reasons of §15, and a decoder that
//! rejects an oversized message from its header, before any of its payload is buffered.

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

const FIN: u8 = 0x80;
const RSV_BITS: u8 = 0x70;
const MASK_BIT: u8 = 0x80;

/// RFC 6455 5.5: control frames carry at most 125 bytes of payload.
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Spec §16: the reason clients (and Reverb's tests) see for an oversized message.
const TOO_BIG_REASON: &str = "Maximum message size exceeded";

/// A complete message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// Payload, already validated as UTF-8.
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// `None` for an empty close payload.
    Close(Option<(u16, String)>),
}

/// Why the connection must be closed; `close_code()` gives the status to send.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Violation {
    /// Close 1002; the str is the (short, human readable) close reason.
    Protocol(&'static str),
    /// Close 1009 with the reason "Maximum message size exceeded".
    TooBig,
    /// Close 1007.
    InvalidUtf8,
}

impl Violation {
    pub fn close_code(&self) -> u16 {
        match self {
            Violation::Protocol(_) => 1002,
            Violation::TooBig => 1009,
            Violation::InvalidUtf8 => 1007,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Violation::Protocol(reason) => reason,
            Violation::TooBig => TOO_BIG_REASON,
            Violation::InvalidUtf8 => "Invalid UTF-8",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    Text,
    Binary,
}

/// Incremental decoder for client->server frames, one per connection.
///
/// Idle it holds no heap memory: the assembly buffer is only filled while a fragmented
/// message is in progress and is handed over (not copied) to the finished message.
#[derive(Debug)]
pub struct Decoder {
    max_message_size: usize,
    /// Kind of the fragmented message in progress, `None` between messages.
    fragmented: Option<DataKind>,
    /// Unmasked payload of the fragments received so far.
    assembled: Vec<u8>,
    /// Length of the prefix of `assembled` already known to be valid UTF-8, so each
    /// fragment of a text message is validated once and an impossible byte sequence is
    /// rejected as soon as it arrives instead of after the whole message.
    utf8_valid: usize,
}

impl Decoder {
    pub fn new(max_message_size: usize) -> Decoder {
        Decoder {
            max_message_size,
            fragmented: None,
            assembled: Vec::new(),
            utf8_valid: 0,
        }
    }

    pub fn set_max_message_size(&mut self, max: usize) {
        self.max_message_size = max;
    }

    /// Try to decode one frame from the front of `input`. Returns the number of bytes
    /// consumed (0 when `input` does not yet hold a whole frame) and, when that frame
    /// completed a message, the message. The caller drops the consumed prefix and calls
    /// again while bytes are consumed.
    ///
    /// Control frames interleaved inside a fragmented message are returned at once. A
    /// frame whose declared payload would make the message exceed the maximum message
    /// size fails with [`Violation::TooBig`] as soon as its header is readable; exactly
    /// the limit is accepted, and the limit applies to the total of a fragmented message.
    ///
    /// After an error the decoder's state is unspecified: the connection is to be closed.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Message>), Violation> {
        if input.len() < 2 {
            return Ok((0, None));
        }
        let (b0, b1) = (input[0], input[1]);
        let fin = b0 & FIN != 0;
        let opcode = b0 & 0x0F;

        // Every check that needs only the first two bytes runs before waiting for more,
        // so a violating peer is dropped without us buffering anything it sends.
        if b0 & RSV_BITS != 0 {
            return Err(Violation::Protocol("Reserved bits set"));
        }
        let is_control = match opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY => false,
            OP_CLOSE | OP_PING | OP_PONG => true,
            _ => return Err(Violation::Protocol("Unknown opcode")),
        };
        if b1 & MASK_BIT == 0 {
            return Err(Violation::Protocol("Client frame not masked"));
        }
        let len7 = b1 & 0x7F;
        if is_control {
            if !fin {
                return Err(Violation::Protocol("Fragmented control frame"));
            }
            if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                return Err(Violation::Protocol("Control frame too long"));
            }
        } else {
            match (opcode, self.fragmented) {
                (OP_CONTINUATION, None) => {
                    return Err(Violation::Protocol("Continuation frame without a message"))
                }
                (OP_TEXT | OP_BINARY, Some(_)) => {
                    return Err(Violation::Protocol(
                        "New message inside a fragmented message",
                    ))
                }
                _ => {}
            }
        }

        let (declared_len, len_end): (u64, usize) = match len7 {
            126 => {
                let Some(bytes) = input.get(2..4) else {
                    return Ok((0, None));
                };
                (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4)
            }
            127 => {
                let Some(bytes) = input.get(2..10) else {
                    return Ok((0, None));
                };
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(Violation::Protocol("Invalid payload length"));
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        if !is_control {
            // Compared in u64 so a declared length beyond usize (32-bit targets) cannot wrap.
            let total = (self.assembled.len() as u64).saturating_add(declared_len);
            if total > self.max_message_size as u64 {
                return Err(Violation::TooBig);
            }
        }
        // Bounded by the message limit (data) or 125 (control), so it fits in usize.
        let payload_len = declared_len as usize;

        let mask_end = len_end + 4;
        let frame_end = mask_end.saturating_add(payload_len);
        if input.len() < frame_end {
            return Ok((0, None));
        }
        let mask = [
            input[len_end],
            input[len_end + 1],
            input[len_end + 2],
            input[len_end + 3],
        ];
        let payload = &input[mask_end..frame_end];

        let message = match opcode {
            OP_PING => Some(Message::Ping(unmasked(payload, mask))),
            OP_PONG => Some(Message::Pong(unmasked(payload, mask))),
            OP_CLOSE => Some(parse_close(unmasked(payload, mask))?),
            _ => self.data_frame(opcode, fin, payload, mask)?,
        };
        Ok((frame_end, message))
    }

    fn data_frame(
        &mut self,
        opcode: u8,
        fin: bool,
        payload: &[u8],
        mask: [u8; 4],
    ) -> Result<Option<Message>, Violation> {
        if fin && opcode != OP_CONTINUATION {
            // The common case, a whole message in one frame: no assembly buffer involved.
            let data = unmasked(payload, mask);
            return if opcode == OP_TEXT {
                if std::str::from_utf8(&data).is_err() {
                    return Err(Violation::InvalidUtf8);
                }
                Ok(Some(Message::Text(data)))
            } else {
                Ok(Some(Message::Binary(data)))
            };
        }

        let kind = match opcode {
            OP_TEXT => DataKind::Text,
            OP_BINARY => DataKind::Binary,
            // decode() has checked that a message is in progress.
            _ => self.fragmented.unwrap_or(DataKind::Binary),
        };
        if opcode != OP_CONTINUATION {
            self.fragmented = Some(kind);
            self.utf8_valid = 0;
        }
        let start = self.assembled.len();
        self.assembled.extend_from_slice(payload);
        unmask(&mut self.assembled[start..], mask);
        if kind == DataKind::Text {
            self.check_text_so_far(fin)?;
        }
        if !fin {
            return Ok(None);
        }
        self.fragmented = None;
        self.utf8_valid = 0;
        let data = std::mem::take(&mut self.assembled);
        Ok(Some(match kind {
            DataKind::Text => Message::Text(data),
            DataKind::Binary => Message::Binary(data),
        }))
    }

    /// Validates the not yet validated tail of a fragmented text message. A tail that
    /// ends inside a multi-byte sequence is fine until the final fragment; a sequence
    /// that can never become valid fails at once (Autobahn 6.4 "fail fast").
    fn check_text_so_far(&mut self, fin: bool) -> Result<(), Violation> {
        match std::str::from_utf8(&self.assembled[self.utf8_valid..]) {
            Ok(_) => {
                self.utf8_valid = self.assembled.len();
                Ok(())
            }
            // error_len() == None: the input ended inside a sequence whose bytes so far
            // are a valid prefix (std checks each continuation byte's range as it goes).
            Err(e) if e.error_len().is_none() && !fin => {
                self.utf8_valid += e.valid_up_to();
                Ok(())
            }
            Err(_) => Err(Violation::InvalidUtf8),
        }
    }
}

/// RFC 6455 7.4, with 1012-1014 accepted as Autobahn does (they were registered later).
fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn parse_close(mut payload: Vec<u8>) -> Result<Message, Violation> {
    match payload.len() {
        0 => Ok(Message::Close(None)),
        1 => Err(Violation::Protocol("Close frame with a 1-byte payload")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_close_code(code) {
                return Err(Violation::Protocol("Invalid close code"));
            }
            payload.drain(..2);
            let reason = String::from_utf8(payload).map_err(|_| Violation::InvalidUtf8)?;
            Ok(Message::Close(Some((code, reason))))
        }
    }
}

fn unmasked(payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut data = payload.to_vec();
    unmask(&mut data, mask);
    data
}

/// XORs `data` with the masking key, starting at key offset 0. Every incoming byte goes
/// through here, so it works a u64 word at a time (8 is a multiple of the key's 4 bytes,
/// so each word sees the key at the same phase); the compiler vectorises the loop.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut words = data.chunks_exact_mut(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
    }
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

fn header_len(payload_len: usize) -> usize {
    if payload_len < 126 {
        2
    } else if payload_len <= 0xFFFF {
        4
    } else {
        10
    }
}

/// Appends one unmasked FIN frame; the length uses the shortest form RFC 6455 5.2 allows.
fn encode_into(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = payload.len();
    out.reserve(header_len(len) + len);
    out.push(FIN | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xFFFF {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_len(payload.len()) + payload.len());
    encode_into(opcode, payload, &mut out);
    out
}

/// The payload of an unmasked, unfragmented server frame: what follows its 2-, 4- or
/// 10-byte header.
pub fn server_frame_payload(frame: &[u8]) -> &[u8] {
    let header = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    frame.get(header..).unwrap_or_default()
}

/// A text frame (the caller guarantees `payload` is UTF-8).
pub fn text_frame(payload: &[u8]) -> Vec<u8> {
    encode(OP_TEXT, payload)
}

/// Appends a text frame (header + payload) to `out`.
pub fn encode_text_into(payload: &[u8], out: &mut Vec<u8>) {
    encode_into(OP_TEXT, payload, out);
}

/// A close frame; `reason` is cut on a char boundary so the payload fits in 125 bytes.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut out = Vec::with_capacity(4 + reason.len());
    out.push(FIN | OP_CLOSE);
    out.push((2 + reason.len()) as u8);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason);
    out
}

/// A ping frame; a payload over 125 bytes is truncated so the frame stays legal.
pub fn ping_frame(payload: &[u8]) -> Vec<u8> {
    encode(OP_PING, &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)])
}

/// A pong frame; a payload over 125 bytes is truncated so the frame stays legal (the
/// decoder never accepts a ping whose payload would need it).
pub fn pong_frame(payload: &[u8]) -> Vec<u8> {
    encode(OP_PONG, &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)])
}

// Client side: `reverb-shard bench` talks to servers as a client, so it sends masked
// frames and reads the server's unmasked ones in place, without copying payloads.

/// The frame kinds of RFC 6455, for code that builds or reads frames as a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => OP_CONTINUATION,
            Opcode::Text => OP_TEXT,
            Opcode::Binary => OP_BINARY,
            Opcode::Close => OP_CLOSE,
            Opcode::Ping => OP_PING,
            Opcode::Pong => OP_PONG,
        }
    }

    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            OP_CONTINUATION => Opcode::Continuation,
            OP_TEXT => Opcode::Text,
            OP_BINARY => Opcode::Binary,
            OP_CLOSE => Opcode::Close,
            OP_PING => Opcode::Ping,
            OP_PONG => Opcode::Pong,
            _ => return None,
        })
    }
}

/// The header of a frame at the front of a buffer, as a client reads a server's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub fin: bool,
    /// `None` for an opcode RFC 6455 does not define.
    pub opcode: Option<Opcode>,
    /// Whether the frame is masked (a server must not mask; the caller decides what
    /// to do with one that does).
    pub masked: bool,
    /// Any RSV bit set (no extension is ever negotiated, so this is a violation).
    pub rsv: bool,
    /// Bytes before the payload: the header and, when masked, the masking key.
    pub header_len: usize,
    pub payload_len: u64,
}

impl FrameHead {
    /// Header plus payload, in bytes.
    pub fn frame_len(&self) -> u64 {
        self.header_len as u64 + self.payload_len
    }
}

/// Reads the header of the frame at the front of `input` without touching its payload;
/// `None` while `input` is too short to hold the whole header.
pub fn frame_head(input: &[u8]) -> Option<FrameHead> {
    let (&b0, &b1) = (input.first()?, input.get(1)?);
    let masked = b1 & MASK_BIT != 0;
    let (payload_len, len_end) = match b1 & 0x7F {
        126 => {
            let bytes = input.get(2..4)?;
            (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4)
        }
        127 => {
            let mut be = [0u8; 8];
            be.copy_from_slice(input.get(2..10)?);
            (u64::from_be_bytes(be), 10)
        }
        short => (u64::from(short), 2),
    };
    let header_len = if masked { len_end + 4 } else { len_end };
    if input.len() < header_len {
        return None;
    }
    Some(FrameHead {
        fin: b0 & FIN != 0,
        opcode: Opcode::from_bits(b0 & 0x0F),
        masked,
        rsv: b0 & RSV_BITS != 0,
        header_len,
        payload_len,
    })
}

/// Appends one masked FIN frame, what a client sends (RFC 6455 5.3), masked with `mask`.
pub fn encode_masked_into(opcode: Opcode, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    let len = payload.len();
    out.reserve(header_len(len) + 4 + len);
    out.push(FIN | opcode.bits());
    if len < 126 {
        out.push(MASK_BIT | len as u8);
    } else if len <= 0xFFFF {
        out.push(MASK_BIT | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(MASK_BIT | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    unmask(&mut out[start..], mask);
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    const BIG: usize = 16 << 20;

    /// A client frame with an explicit first byte (FIN, RSV and opcode bits), masked or not.
    fn raw_frame(b0: u8, masked: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![b0];
        let mask_bit = if masked { MASK_BIT } else { 0 };
        let len = payload.len();
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if len <= 0xFFFF {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if masked {
            out.extend_from_slice(&KEY);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        out
    }

    /// A well-formed masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        raw_frame(if fin { FIN } else { 0 } | opcode, true, payload)
    }

    fn text(payload: &str) -> Vec<u8> {
        frame(true, OP_TEXT, payload.as_bytes())
    }

    /// Header (with mask key) of a masked client frame declaring `len` bytes, no payload.
    fn header64(b0: u8, len: u64) -> Vec<u8> {
        let mut out = vec![b0, MASK_BIT | 127];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&KEY);
        out
    }

    /// Decodes frames from `input` the way the connection code does; returns the
    /// messages and how many bytes were left unconsumed.
    fn decode_all(dec: &mut Decoder, mut input: &[u8]) -> Result<(Vec<Message>, usize), Violation> {
        let mut messages = Vec::new();
        loop {
            let (n, message) = dec.decode(input)?;
            if let Some(message) = message {
                assert!(n > 0, "a message without consuming bytes");
                messages.push(message);
            }
            if n == 0 {
                return Ok((messages, input.len()));
            }
            input = &input[n..];
        }
    }

    /// Like `decode_all` but also hands back the messages decoded before an error, as a
    /// peer would have seen them processed before the close.
    fn run(dec: &mut Decoder, input: &[u8]) -> (Vec<Message>, Option<Violation>) {
        let mut messages = Vec::new();
        let mut rest = input;
        loop {
            match dec.decode(rest) {
                Err(v) => return (messages, Some(v)),
                Ok((0, _)) => {
                    assert!(rest.is_empty(), "{} bytes left undecoded", rest.len());
                    return (messages, None);
                }
                Ok((n, m)) => {
                    messages.extend(m);
                    rest = &rest[n..];
                }
            }
        }
    }

    fn run_ok(max: usize, input: &[u8]) -> Vec<Message> {
        let (messages, err) = run(&mut Decoder::new(max), input);
        assert_eq!(err, None);
        messages
    }

    fn run_err(max: usize, input: &[u8]) -> (Vec<Message>, Violation) {
        let (messages, err) = run(&mut Decoder::new(max), input);
        (messages, err.expect("expected a violation"))
    }

    fn protocol(input: &[u8]) {
        let (_, v) = run_err(BIG, input);
        assert!(matches!(v, Violation::Protocol(_)), "{v:?}");
        assert_eq!(v.close_code(), 1002);
    }

    /// Feeds `input` one byte at a time, as a slow network would.
    fn bytewise(dec: &mut Decoder, input: &[u8]) -> Result<Vec<Message>, Violation> {
        let mut buf = Vec::new();
        let mut messages = Vec::new();
        for &byte in input {
            buf.push(byte);
            loop {
                let (n, m) = dec.decode(&buf)?;
                messages.extend(m);
                if n == 0 {
                    break;
                }
                buf.drain(..n);
            }
        }
        assert!(buf.is_empty());
        Ok(messages)
    }

    fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
        frames.concat()
    }

    fn text_msg(s: &str) -> Message {
        Message::Text(s.as_bytes().to_vec())
    }

    // ---- basics --------------------------------------------------------------------

    #[test]
    fn rfc_example_masked_hello() {
        // RFC 6455 5.7, "A single-frame masked text message".
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut dec = Decoder::new(BIG);
        assert_eq!(dec.decode(&bytes), Ok((11, Some(text_msg("Hello")))));
        assert_eq!(bytes.to_vec(), text("Hello"));
    }

    #[test]
    fn each_message_kind() {
        let input = concat(&[
            text("hi"),
            frame(true, OP_BINARY, &[0, 1, 0xff]),
            frame(true, OP_PING, b"p"),
            frame(true, OP_PONG, b"q"),
            frame(true, OP_CLOSE, &[0x03, 0xe8, b'o', b'k']),
        ]);
        assert_eq!(
            run_ok(BIG, &input),
            vec![
                text_msg("hi"),
                Message::Binary(vec![0, 1, 0xff]),
                Message::Ping(b"p".to_vec()),
                Message::Pong(b"q".to_vec()),
                Message::Close(Some((1000, "ok".to_string()))),
            ]
        );
    }

    #[test]
    fn empty_payloads() {
        let input = concat(&[
            text(""),
            frame(true, OP_BINARY, b""),
            frame(true, OP_PING, b""),
            frame(true, OP_PONG, b""),
            frame(true, OP_CLOSE, b""),
        ]);
        assert_eq!(
            run_ok(BIG, &input),
            vec![
                text_msg(""),
                Message::Binary(vec![]),
                Message::Ping(vec![]),
                Message::Pong(vec![]),
                Message::Close(None),
            ]
        );
    }

    #[test]
    fn incomplete_input_consumes_nothing() {
        let whole = text("hello world");
        let mut dec = Decoder::new(BIG);
        for cut in 0..whole.len() {
            assert_eq!(dec.decode(&whole[..cut]), Ok((0, None)), "cut at {cut}");
        }
        assert_eq!(
            dec.decode(&whole),
            Ok((whole.len(), Some(text_msg("hello world"))))
        );
    }

    #[test]
    fn one_byte_at_a_time_all_length_forms() {
        let medium = "m".repeat(300);
        let large = "L".repeat(70_000);
        let input = concat(&[
            text("short"),
            text(&medium),
            frame(false, OP_TEXT, b"frag"),
            frame(true, OP_PING, b"mid"),
            frame(true, OP_CONTINUATION, b"ment"),
            text(&large),
            frame(true, OP_BINARY, &[9; 126]),
        ]);
        let mut dec = Decoder::new(BIG);
        assert_eq!(
            bytewise(&mut dec, &input).unwrap(),
            vec![
                text_msg("short"),
                text_msg(&medium),
                Message::Ping(b"mid".to_vec()),
                text_msg("fragment"),
                text_msg(&large),
                Message::Binary(vec![9; 126]),
            ]
        );
    }

    #[test]
    fn several_frames_in_one_buffer_with_trailing_partial() {
        let mut input = concat(&[text("a"), text("bb"), frame(true, OP_PING, b"")]);
        let partial = text("ccc");
        input.extend_from_slice(&partial[..4]);
        let mut dec = Decoder::new(BIG);
        let (messages, left) = decode_all(&mut dec, &input).unwrap();
        assert_eq!(
            messages,
            vec![text_msg("a"), text_msg("bb"), Message::Ping(vec![])]
        );
        assert_eq!(left, 4);
        assert_eq!(
            dec.decode(&partial),
            Ok((partial.len(), Some(text_msg("ccc"))))
        );
    }

    #[test]
    fn non_final_fragment_consumes_without_message() {
        let f = frame(false, OP_TEXT, b"abc");
        let mut dec = Decoder::new(BIG);
        assert_eq!(dec.decode(&f), Ok((f.len(), None)));
    }

    // ---- fragmentation -------------------------------------------------------------

    #[test]
    fn text_in_three_fragments_with_ping_in_middle() {
        let input = concat(&[
            frame(false, OP_TEXT, b"Hel"),
            frame(true, OP_PING, b"are you there"),
            frame(false, OP_CONTINUATION, b"lo, "),
            frame(true, OP_CONTINUATION, b"world"),
        ]);
        assert_eq!(
            run_ok(BIG, &input),
            vec![
                Message::Ping(b"are you there".to_vec()),
                text_msg("Hello, world"),
            ]
        );
    }

    #[test]
    fn fragmented_binary_is_not_utf8_checked() {
        let input = concat(&[
            frame(false, OP_BINARY, &[0xff, 0xfe]),
            frame(false, OP_CONTINUATION, &[]),
            frame(true, OP_CONTINUATION, &[0xc0]),
        ]);
        assert_eq!(
            run_ok(BIG, &input),
            vec![Message::Binary(vec![0xff, 0xfe, 0xc0])]
        );
    }

    #[test]
    fn decoder_holds_no_memory_when_idle() {
        let mut dec = Decoder::new(BIG);
        assert_eq!(dec.assembled.capacity(), 0);
        let input = concat(&[
            frame(false, OP_TEXT, b"ab"),
            frame(true, OP_CONTINUATION, b"c"),
        ]);
        assert_eq!(run(&mut dec, &input).0, vec![text_msg("abc")]);
        assert_eq!(dec.assembled.capacity(), 0);
        assert_eq!(dec.fragmented, None);
        // The decoder is reusable for the next message.
        assert_eq!(run(&mut dec, &text("next")).0, vec![text_msg("next")]);
    }

    #[test]
    fn continuation_without_started_message() {
        protocol(&frame(true, OP_CONTINUATION, b"x"));
        protocol(&frame(false, OP_CONTINUATION, b"x"));
        // Also after a message completed.
        let (messages, v) = run_err(
            BIG,
            &concat(&[
                frame(false, OP_TEXT, b"a"),
                frame(true, OP_CONTINUATION, b"b"),
                frame(true, OP_CONTINUATION, b"c"),
            ]),
        );
        assert_eq!(messages, vec![text_msg("ab")]);
        assert_eq!(v.close_code(), 1002);
    }

    #[test]
    fn new_data_frame_inside_fragmented_message() {
        for (first, second) in [
            (OP_TEXT, OP_TEXT),
            (OP_TEXT, OP_BINARY),
            (OP_BINARY, OP_TEXT),
            (OP_BINARY, OP_BINARY),
        ] {
            for fin in [false, true] {
                protocol(&concat(&[
                    frame(false, first, b"a"),
                    frame(fin, second, b"b"),
                ]));
            }
        }
    }

    #[test]
    fn violation_detected_from_two_header_bytes() {
        let mut dec = Decoder::new(BIG);
        dec.decode(&frame(false, OP_TEXT, b"a")).unwrap();
        // Only two bytes of the offending frame are present.
        assert!(matches!(
            dec.decode(&[0x81, 0xFE]),
            Err(Violation::Protocol(_))
        ));
        assert!(matches!(
            Decoder::new(BIG).decode(&[0x80, 0xFF]),
            Err(Violation::Protocol(_))
        ));
    }

    // ---- header rules --------------------------------------------------------------

    #[test]
    fn unmasked_client_frames_rejected() {
        protocol(&raw_frame(FIN | OP_TEXT, false, b"hello"));
        protocol(&raw_frame(FIN | OP_PING, false, b""));
        protocol(&raw_frame(FIN | OP_CLOSE, false, b""));
        // Detected from the first two bytes alone.
        assert!(matches!(
            Decoder::new(BIG).decode(&[0x81, 0x05]),
            Err(Violation::Protocol(_))
        ));
    }

    #[test]
    fn reserved_bits_rejected() {
        for rsv in [0x40, 0x20, 0x10, 0x70] {
            for opcode in [OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE, OP_CONTINUATION] {
                protocol(&raw_frame(FIN | rsv | opcode, true, b"x"));
            }
        }
    }

    #[test]
    fn unknown_opcodes_rejected() {
        for opcode in (3..=7).chain(11..=15) {
            for fin in [FIN, 0] {
                protocol(&raw_frame(fin | opcode, true, b""));
                protocol(&raw_frame(fin | opcode, true, b"payload"));
            }
        }
    }

    #[test]
    fn control_frames_must_not_be_fragmented() {
        for opcode in [OP_CLOSE, OP_PING, OP_PONG] {
            protocol(&frame(false, opcode, b""));
        }
    }

    #[test]
    fn control_frame_payload_limit() {
        for opcode in [OP_PING, OP_PONG] {
            let ok = frame(true, opcode, &[7; 125]);
            assert_eq!(run_ok(BIG, &ok).len(), 1);
            protocol(&frame(true, opcode, &[7; 126]));
            protocol(&frame(true, opcode, &[7; 70_000]));
        }
        // Close with a 124-byte reason: payload 126.
        let mut payload = vec![0x03, 0xe8];
        payload.extend_from_slice(&[b'r'; 124]);
        protocol(&frame(true, OP_CLOSE, &payload));
    }

    #[test]
    fn length_with_most_significant_bit_rejected() {
        let mut dec = Decoder::new(usize::MAX);
        let header = header64(FIN | OP_BINARY, 1 << 63);
        assert!(matches!(
            dec.decode(&header[..10]),
            Err(Violation::Protocol(_))
        ));
        let header = header64(FIN | OP_BINARY, u64::MAX);
        assert!(matches!(
            Decoder::new(usize::MAX).decode(&header),
            Err(Violation::Protocol(_))
        ));
    }

    #[test]
    fn non_minimal_lengths_accepted() {
        // RFC says minimal, but common servers accept these; so do we.
        let mut f = vec![FIN | OP_TEXT, MASK_BIT | 126, 0, 2];
        f.extend_from_slice(&KEY);
        f.extend(b"ok".iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        assert_eq!(run_ok(BIG, &f), vec![text_msg("ok")]);
    }

    // ---- message size limit --------------------------------------------------------

    #[test]
    fn single_frame_exact_limit_and_one_over() {
        let limit = 10_000;
        let exact = frame(true, OP_TEXT, &[b'a'; 10_000]);
        assert_eq!(
            run_ok(limit, &exact),
            vec![Message::Text(vec![b'a'; 10_000])]
        );
        let over = frame(true, OP_TEXT, &[b'a'; 10_001]);
        assert_eq!(run_err(limit, &over).1, Violation::TooBig);
        let over = frame(true, OP_BINARY, &[0; 10_001]);
        assert_eq!(run_err(limit, &over).1, Violation::TooBig);
        // Small limits around the 7-bit boundary.
        assert_eq!(run_ok(5, &text("12345")).len(), 1);
        assert_eq!(run_err(5, &text("123456")).1, Violation::TooBig);
        assert_eq!(run_ok(0, &text("")).len(), 1);
        assert_eq!(run_err(0, &text("1")).1, Violation::TooBig);
    }

    #[test]
    fn fragmented_total_exact_limit_and_one_over() {
        let limit = 10_000;
        let exact = concat(&[
            frame(false, OP_TEXT, &[b'a'; 4_000]),
            frame(false, OP_CONTINUATION, &[b'b'; 4_000]),
            frame(true, OP_CONTINUATION, &[b'c'; 2_000]),
        ]);
        let messages = run_ok(limit, &exact);
        assert!(matches!(&messages[..], [Message::Text(t)] if t.len() == 10_000));
        let over = concat(&[
            frame(false, OP_TEXT, &[b'a'; 4_000]),
            frame(false, OP_CONTINUATION, &[b'b'; 4_000]),
            frame(true, OP_CONTINUATION, &[b'c'; 2_001]),
        ]);
        assert_eq!(run_err(limit, &over).1, Violation::TooBig);
        // The failing continuation is rejected from its header alone.
        let mut dec = Decoder::new(limit);
        let first = frame(false, OP_BINARY, &[0; 9_000]);
        assert_eq!(dec.decode(&first), Ok((first.len(), None)));
        let mut header = vec![OP_CONTINUATION, MASK_BIT | 126];
        header.extend_from_slice(&1_001u16.to_be_bytes());
        assert_eq!(dec.decode(&header), Err(Violation::TooBig));
    }

    #[test]
    fn control_frames_do_not_count_toward_limit() {
        let input = concat(&[
            frame(false, OP_TEXT, b"abc"),
            frame(true, OP_PING, &[1; 125]),
            frame(true, OP_CONTINUATION, b"de"),
        ]);
        assert_eq!(
            run_ok(5, &input),
            vec![Message::Ping(vec![1; 125]), text_msg("abcde")]
        );
    }

    #[test]
    fn too_big_from_header_alone() {
        let header = header64(FIN | OP_TEXT, 10_000_000);
        let mut dec = Decoder::new(10_000);
        // Without the mask key, and with it: either way no payload has arrived.
        assert_eq!(dec.decode(&header[..10]), Err(Violation::TooBig));
        let mut dec = Decoder::new(10_000);
        assert_eq!(dec.decode(&header), Err(Violation::TooBig));
        // 16-bit form.
        let mut dec = Decoder::new(10_000);
        let mut h16 = vec![FIN | OP_BINARY, MASK_BIT | 126];
        h16.extend_from_slice(&10_001u16.to_be_bytes());
        assert_eq!(dec.decode(&h16), Err(Violation::TooBig));
    }

    #[test]
    fn set_max_message_size_applies() {
        let mut dec = Decoder::new(3);
        assert_eq!(dec.decode(&text("abcd")), Err(Violation::TooBig));
        let mut dec = Decoder::new(3);
        dec.set_max_message_size(4);
        assert_eq!(dec.decode(&text("abcd")).unwrap().1, Some(text_msg("abcd")));
    }

    #[test]
    fn violation_codes_and_reasons() {
        assert_eq!(Violation::TooBig.close_code(), 1009);
        assert_eq!(Violation::TooBig.reason(), "Maximum message size exceeded");
        assert_eq!(Violation::InvalidUtf8.close_code(), 1007);
        assert!(!Violation::InvalidUtf8.reason().is_empty());
        let v = Violation::Protocol("Unknown opcode");
        assert_eq!(v.close_code(), 1002);
        assert_eq!(v.reason(), "Unknown opcode");
        // Every protocol reason fits a close frame.
        for input in [
            raw_frame(FIN | 0x40 | OP_TEXT, true, b""),
            raw_frame(FIN | 3, true, b""),
            raw_frame(FIN | OP_TEXT, false, b""),
            frame(false, OP_PING, b""),
            frame(true, OP_PING, &[0; 126]),
            frame(true, OP_CONTINUATION, b""),
            concat(&[frame(false, OP_TEXT, b""), text("")]),
            frame(true, OP_CLOSE, b"x"),
            frame(true, OP_CLOSE, &[0, 0]),
            header64(FIN | OP_TEXT, u64::MAX),
        ] {
            let (_, v) = run_err(BIG, &input);
            assert!(!v.reason().is_empty() && v.reason().len() <= 123, "{v:?}");
        }
    }

    // ---- UTF-8 ---------------------------------------------------------------------

    #[test]
    fn invalid_utf8_text_rejected_binary_accepted() {
        let bad = [b'a', 0xff, b'b'];
        assert_eq!(
            run_err(BIG, &frame(true, OP_TEXT, &bad)).1,
            Violation::InvalidUtf8
        );
        assert_eq!(
            run_ok(BIG, &frame(true, OP_BINARY, &bad)),
            vec![Message::Binary(bad.to_vec())]
        );
        assert_eq!(Violation::InvalidUtf8.close_code(), 1007);
    }

    #[test]
    fn utf8_sequence_split_across_fragments() {
        let s = "κόσμε € 𝄞";
        let bytes = s.as_bytes();
        for split in 0..=bytes.len() {
            let input = concat(&[
                frame(false, OP_TEXT, &bytes[..split]),
                frame(true, OP_CONTINUATION, &bytes[split..]),
            ]);
            assert_eq!(run_ok(BIG, &input), vec![text_msg(s)], "split at {split}");
        }
    }

    #[test]
    fn text_ending_inside_a_sequence_rejected() {
        let input = concat(&[
            frame(false, OP_TEXT, b"ok"),
            frame(true, OP_CONTINUATION, &[0xe2, 0x82]),
        ]);
        assert_eq!(run_err(BIG, &input).1, Violation::InvalidUtf8);
        assert_eq!(
            run_err(BIG, &frame(true, OP_TEXT, &[0xf0, 0x9d])).1,
            Violation::InvalidUtf8
        );
    }

    #[test]
    fn impossible_utf8_fails_before_final_fragment() {
        // U+110000 lead bytes: can never become valid, whatever follows.
        let mut dec = Decoder::new(BIG);
        assert_eq!(
            dec.decode(&frame(false, OP_TEXT, &[b'a', 0xf4, 0x90])),
            Err(Violation::InvalidUtf8)
        );
        // Valid prefix in fragment 1, the impossible byte comes in fragment 2.
        let mut dec = Decoder::new(BIG);
        let f1 = frame(false, OP_TEXT, &[b'a', 0xf4]);
        assert_eq!(dec.decode(&f1), Ok((f1.len(), None)));
        assert_eq!(
            dec.decode(&frame(false, OP_CONTINUATION, &[0x90])),
            Err(Violation::InvalidUtf8)
        );
    }

    // ---- close frames --------------------------------------------------------------

    #[test]
    fn close_payload_of_one_byte_rejected() {
        protocol(&frame(true, OP_CLOSE, &[0x03]));
    }

    #[test]
    fn close_codes() {
        let valid: [u16; 16] = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ];
        for code in valid {
            let f = frame(true, OP_CLOSE, &code.to_be_bytes());
            assert_eq!(
                run_ok(BIG, &f),
                vec![Message::Close(Some((code, String::new())))],
                "code {code}"
            );
        }
        let invalid: [u16; 13] = [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for code in invalid {
            let (_, v) = run_err(BIG, &frame(true, OP_CLOSE, &code.to_be_bytes()));
            assert_eq!(v, Violation::Protocol("Invalid close code"), "code {code}");
        }
        for code in 0..=u16::MAX {
            let expected = (1000..=1003).contains(&code)
                || (1007..=1014).contains(&code)
                || (3000..=4999).contains(&code);
            assert_eq!(is_valid_close_code(code), expected, "code {code}");
        }
    }

    #[test]
    fn close_reason_must_be_utf8() {
        let mut payload = vec![0x03, 0xe8];
        payload.extend_from_slice(&[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xff]);
        assert_eq!(
            run_err(BIG, &frame(true, OP_CLOSE, &payload)).1,
            Violation::InvalidUtf8
        );
    }

    /// Turns a server frame (unmasked, 7-bit length) into the same frame sent by a client.
    fn as_client(server: &[u8]) -> Vec<u8> {
        assert!(server[1] < 126);
        frame(true, server[0] & 0x0F, &server[2..])
    }

    #[test]
    fn close_frame_round_trip() {
        for (code, reason) in [(1000, ""), (1001, "going away"), (4999, "ünïcödé ✓")] {
            let encoded = close_frame(code, reason);
            assert_eq!(
                run_ok(BIG, &as_client(&encoded)),
                vec![Message::Close(Some((code, reason.to_string())))]
            );
        }
        let long = "é".repeat(100);
        let encoded = close_frame(1000, &long);
        let Message::Close(Some((1000, reason))) = &run_ok(BIG, &as_client(&encoded))[0] else {
            panic!("not a close");
        };
        assert_eq!(reason.len(), 122);
        assert!(long.starts_with(reason.as_str()));
    }

    // ---- encoders ------------------------------------------------------------------

    #[test]
    fn text_frame_short() {
        assert_eq!(text_frame(b""), vec![0x81, 0x00]);
        assert_eq!(text_frame(b"Hello"), b"\x81\x05Hello".to_vec());
        let p = [b'x'; 125];
        let f = text_frame(&p);
        assert_eq!(&f[..2], &[0x81, 125]);
        assert_eq!(&f[2..], &p[..]);
    }

    #[test]
    fn text_frame_16_bit_length() {
        for (len, be) in [
            (126usize, [0x00, 0x7e]),
            (256, [0x01, 0x00]),
            (65535, [0xff, 0xff]),
        ] {
            let p = vec![b'y'; len];
            let f = text_frame(&p);
            assert_eq!(&f[..4], &[0x81, 126, be[0], be[1]]);
            assert_eq!(&f[4..], &p[..]);
        }
    }

    #[test]
    fn text_frame_64_bit_length() {
        let p = vec![b'z'; 65536];
        let f = text_frame(&p);
        assert_eq!(&f[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(&f[10..], &p[..]);
        assert_eq!(f.len(), f.capacity());
    }

    #[test]
    fn encode_text_into_appends() {
        let mut out = b"prefix".to_vec();
        encode_text_into(b"abc", &mut out);
        encode_text_into(&[b'q'; 200], &mut out);
        let mut expected = b"prefix\x81\x03abc\x81\x7e\x00\xc8".to_vec();
        expected.extend_from_slice(&[b'q'; 200]);
        assert_eq!(out, expected);
        let mut out = Vec::new();
        encode_text_into(&[0; 70_000], &mut out);
        assert_eq!(out, text_frame(&[0; 70_000]));
    }

    #[test]
    fn control_frame_encoders() {
        assert_eq!(ping_frame(b""), vec![0x89, 0x00]);
        assert_eq!(ping_frame(b"hi"), vec![0x89, 0x02, b'h', b'i']);
        assert_eq!(pong_frame(b""), vec![0x8a, 0x00]);
        assert_eq!(pong_frame(b"hi"), vec![0x8a, 0x02, b'h', b'i']);
        assert_eq!(pong_frame(&[1; 200]).len(), 2 + 125);
        assert_eq!(
            close_frame(1009, "Maximum message size exceeded"),
            [
                &[0x88, 31, 0x03, 0xf1][..],
                b"Maximum message size exceeded"
            ]
            .concat()
        );
        assert_eq!(close_frame(1000, ""), vec![0x88, 0x02, 0x03, 0xe8]);
        assert_eq!(close_frame(4200, &"r".repeat(500))[1], 125);
    }

    #[test]
    fn ping_echo_through_pong_encoder() {
        let Message::Ping(p) = &run_ok(BIG, &frame(true, OP_PING, &[0xAB; 125]))[0] else {
            panic!("not a ping");
        };
        assert_eq!(pong_frame(p), [&[0x8a, 125][..], &[0xAB; 125]].concat());
    }

    #[test]
    fn unmask_matches_bytewise_xor() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..70 {
            let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut fast = original.clone();
            unmask(&mut fast, mask);
            let slow: Vec<u8> = original
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow, "len {len}");
        }
    }

    // ---- Autobahn-style cases (fuzzingclient sections 1-7, 9, 10) ------------------

    #[test]
    fn autobahn_1_framing_text_and_binary_lengths() {
        for len in [0, 125, 126, 127, 128, 65535, 65536] {
            let payload = "*".repeat(len);
            assert_eq!(run_ok(BIG, &text(&payload)), vec![text_msg(&payload)]);
            let bin = vec![0xfe; len];
            assert_eq!(
                run_ok(BIG, &frame(true, OP_BINARY, &bin)),
                vec![Message::Binary(bin.clone())]
            );
        }
        // 1.1.8 / 1.2.8: 65536 bytes delivered in 997-byte chunks.
        let payload = "*".repeat(65536);
        let input = text(&payload);
        let mut dec = Decoder::new(BIG);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for chunk in input.chunks(997) {
            buf.extend_from_slice(chunk);
            let (n, m) = dec.decode(&buf).unwrap();
            buf.drain(..n);
            got.extend(m);
        }
        assert_eq!(got, vec![text_msg(&payload)]);
    }

    #[test]
    fn autobahn_2_pings_and_pongs() {
        // 2.1-2.4: empty, text, binary and 125-byte payloads are echoed as they came.
        for payload in [
            &b""[..],
            b"Hello, world!",
            &[0x00, 0xff, 0xfe, 0xfd],
            &[0xfe; 125],
        ] {
            assert_eq!(
                run_ok(BIG, &frame(true, OP_PING, payload)),
                vec![Message::Ping(payload.to_vec())]
            );
        }
        // 2.5: 126-byte ping fails.
        protocol(&frame(true, OP_PING, &[0xfe; 126]));
        // 2.6: 125-byte ping byte by byte.
        let mut dec = Decoder::new(BIG);
        assert_eq!(
            bytewise(&mut dec, &frame(true, OP_PING, &[0xfe; 125])).unwrap(),
            vec![Message::Ping(vec![0xfe; 125])]
        );
        // 2.7-2.9: unsolicited pongs are fine.
        let input = concat(&[
            frame(true, OP_PONG, b""),
            frame(true, OP_PONG, b"unsolicited"),
        ]);
        assert_eq!(run_ok(BIG, &input).len(), 2);
        // 2.10: ten pings in a row.
        let input: Vec<u8> = (0..10)
            .flat_map(|i| frame(true, OP_PING, format!("payload-{i}").as_bytes()))
            .collect();
        assert_eq!(run_ok(BIG, &input).len(), 10);
    }

    #[test]
    fn autobahn_3_reserved_bits_after_valid_frames() {
        // 3.2: a valid text echoes, then the RSV2 frame fails.
        let (messages, v) = run_err(
            BIG,
            &concat(&[
                text("Hello"),
                raw_frame(FIN | 0x20 | OP_TEXT, true, b"Hello"),
                frame(true, OP_PING, b""),
            ]),
        );
        assert_eq!(messages, vec![text_msg("Hello")]);
        assert_eq!(v.close_code(), 1002);
        // 3.7: close with RSV bits.
        protocol(&raw_frame(FIN | 0x70 | OP_CLOSE, true, b""));
    }

    #[test]
    fn autobahn_4_reserved_opcodes_after_valid_frames() {
        // 4.1.3 / 4.2.3: text, reserved opcode, ping -> text then failure.
        for opcode in [5, 13] {
            let (messages, v) = run_err(
                BIG,
                &concat(&[
                    text("Hello"),
                    raw_frame(FIN | opcode, true, b""),
                    frame(true, OP_PING, b""),
                ]),
            );
            assert_eq!(messages, vec![text_msg("Hello")]);
            assert_eq!(v.close_code(), 1002);
        }
    }

    #[test]
    fn autobahn_5_fragmentation() {
        // 5.1 / 5.2: fragmented ping / pong.
        protocol(&concat(&[
            frame(false, OP_PING, b"frag"),
            frame(true, OP_CONTINUATION, b"ment"),
        ]));
        protocol(&concat(&[
            frame(false, OP_PONG, b"frag"),
            frame(true, OP_CONTINUATION, b"ment"),
        ]));
        // 5.3-5.5: text in two fragments, whole, chunked and byte-wise.
        let two = concat(&[
            frame(false, OP_TEXT, b"frag"),
            frame(true, OP_CONTINUATION, b"ment"),
        ]);
        assert_eq!(run_ok(BIG, &two), vec![text_msg("fragment")]);
        assert_eq!(
            bytewise(&mut Decoder::new(BIG), &two).unwrap(),
            vec![text_msg("fragment")]
        );
        // 5.6-5.8: ping between the fragments.
        let with_ping = concat(&[
            frame(false, OP_TEXT, b"frag"),
            frame(true, OP_PING, b"ping"),
            frame(true, OP_CONTINUATION, b"ment"),
        ]);
        assert_eq!(
            run_ok(BIG, &with_ping),
            vec![Message::Ping(b"ping".to_vec()), text_msg("fragment")]
        );
        // 5.9-5.14: continuation without a message, final or not, followed by valid text.
        for fin in [true, false] {
            let (messages, v) = run_err(
                BIG,
                &concat(&[frame(fin, OP_CONTINUATION, b"x"), text("y")]),
            );
            assert!(messages.is_empty());
            assert_eq!(v.close_code(), 1002);
        }
        // 5.15: two fragments, then a stray continuation pair.
        let (messages, v) = run_err(
            BIG,
            &concat(&[
                frame(false, OP_TEXT, b"frag1"),
                frame(true, OP_CONTINUATION, b"frag2"),
                frame(false, OP_CONTINUATION, b"frag3"),
                frame(true, OP_CONTINUATION, b"frag4"),
            ]),
        );
        assert_eq!(messages, vec![text_msg("frag1frag2")]);
        assert_eq!(v.close_code(), 1002);
        // 5.18: a fragmented text "continued" by a second text frame.
        protocol(&concat(&[
            frame(false, OP_TEXT, b"a"),
            frame(true, OP_TEXT, b"b"),
        ]));
        // 5.19 / 5.20: five fragments with pings after the first and the third.
        let input = concat(&[
            frame(false, OP_TEXT, b"f1"),
            frame(true, OP_PING, b"p1"),
            frame(false, OP_CONTINUATION, b"f2"),
            frame(false, OP_CONTINUATION, b"f3"),
            frame(true, OP_PING, b"p2"),
            frame(false, OP_CONTINUATION, b"f4"),
            frame(true, OP_CONTINUATION, b"f5"),
        ]);
        let expected = vec![
            Message::Ping(b"p1".to_vec()),
            Message::Ping(b"p2".to_vec()),
            text_msg("f1f2f3f4f5"),
        ];
        assert_eq!(run_ok(BIG, &input), expected);
        assert_eq!(bytewise(&mut Decoder::new(BIG), &input).unwrap(), expected);
    }

    #[test]
    fn autobahn_6_1_empty_fragments() {
        let input = concat(&[
            frame(false, OP_TEXT, b""),
            frame(false, OP_CONTINUATION, b""),
            frame(true, OP_CONTINUATION, b""),
        ]);
        assert_eq!(run_ok(BIG, &input), vec![text_msg("")]);
        let input = concat(&[
            frame(false, OP_TEXT, b""),
            frame(false, OP_CONTINUATION, b"middle"),
            frame(true, OP_CONTINUATION, b""),
        ]);
        assert_eq!(run_ok(BIG, &input), vec![text_msg("middle")]);
    }

    #[test]
    fn autobahn_6_2_valid_utf8_fragmented_at_every_byte() {
        let s = "Hello-µ@ßöäüàá-UTF-8!!";
        let frames: Vec<Vec<u8>> = s
            .as_bytes()
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let last = i + 1 == s.len();
                let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
                frame(last, opcode, &[*b])
            })
            .collect();
        assert_eq!(run_ok(BIG, &concat(&frames)), vec![text_msg(s)]);
    }

    #[test]
    fn autobahn_6_3_invalid_utf8_whole_and_fragmented() {
        // "κόσμε" + an encoded surrogate (ED A0 80) + "edited".
        let mut bad = "κόσμε".as_bytes().to_vec();
        bad.extend_from_slice(&[0xed, 0xa0, 0x80]);
        bad.extend_from_slice(b"edited");
        assert_eq!(
            run_err(BIG, &frame(true, OP_TEXT, &bad)).1,
            Violation::InvalidUtf8
        );
        let frames: Vec<Vec<u8>> = bad
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
                frame(i + 1 == bad.len(), opcode, &[*b])
            })
            .collect();
        let (messages, v) = run_err(BIG, &concat(&frames));
        assert!(messages.is_empty());
        assert_eq!(v, Violation::InvalidUtf8);
    }

    #[test]
    fn autobahn_6_4_fail_fast() {
        // 6.4.1: the first fragment already holds an impossible sequence; the decoder
        // must fail on it, without the rest of the message.
        let mut f1 = "κόσμε".as_bytes().to_vec();
        f1.extend_from_slice(&[0xf4, 0x90, 0x80, 0x80]);
        let mut dec = Decoder::new(BIG);
        assert_eq!(
            dec.decode(&frame(false, OP_TEXT, &f1)),
            Err(Violation::InvalidUtf8)
        );
        // 6.4.2: fragment 1 ends with F4, fragment 2 starts with 90.
        let mut dec = Decoder::new(BIG);
        let mut f1 = "κόσμε".as_bytes().to_vec();
        f1.push(0xf4);
        let first = frame(false, OP_TEXT, &f1);
        assert_eq!(dec.decode(&first), Ok((first.len(), None)));
        assert_eq!(
            dec.decode(&frame(false, OP_CONTINUATION, &[0x90, 0x80, 0x80])),
            Err(Violation::InvalidUtf8)
        );
    }

    #[test]
    fn autobahn_6_5_to_6_23_utf8_sequences() {
        let valid: &[&[u8]] = &[
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", // κόσμε
            b"\x00",
            b"\xc2\x80",
            b"\xe0\xa0\x80",
            b"\xf0\x90\x80\x80",
            b"\x7f",
            b"\xdf\xbf",
            b"\xef\xbf\xbf", // U+FFFF: a noncharacter, still valid UTF-8
            b"\xf4\x8f\xbf\xbf",
            b"\xed\x9f\xbf",
            b"\xee\x80\x80",
            b"\xef\xbf\xbd",
            b"\xef\xbb\xbf", // BOM
        ];
        for bytes in valid {
            assert_eq!(
                run_ok(BIG, &frame(true, OP_TEXT, bytes)),
                vec![Message::Text(bytes.to_vec())],
                "{bytes:x?}"
            );
        }
        let invalid: &[&[u8]] = &[
            b"\x80", // lone continuation
            b"\xbf",
            b"\xc0\xaf", // overlong '/'
            b"\xe0\x80\xaf",
            b"\xf0\x80\x80\xaf",
            b"\xc1\xbf",
            b"\xf8\x88\x80\x80\x80", // 5-byte form
            b"\xfc\x84\x80\x80\x80\x80",
            b"\xfe",
            b"\xff",
            b"\xed\xa0\x80", // surrogates
            b"\xed\xbf\xbf",
            b"\xed\xa0\x80\xed\xb0\x80",
            b"\xf4\x90\x80\x80", // beyond U+10FFFF
            b"\xc0",             // truncated sequences
            b"\xe0\x80",
            b"\xce\xba\xe1",
        ];
        for bytes in invalid {
            assert_eq!(
                run_err(BIG, &frame(true, OP_TEXT, bytes)).1,
                Violation::InvalidUtf8,
                "{bytes:x?}"
            );
        }
    }

    #[test]
    fn autobahn_7_close_handling() {
        // 7.1.x: messages before a close are delivered, then the close.
        let input = concat(&[text("Hello"), frame(true, OP_CLOSE, &[0x03, 0xe8])]);
        assert_eq!(
            run_ok(BIG, &input),
            vec![
                text_msg("Hello"),
                Message::Close(Some((1000, String::new())))
            ]
        );
        // 7.3.1: empty close payload.
        assert_eq!(
            run_ok(BIG, &frame(true, OP_CLOSE, b"")),
            vec![Message::Close(None)]
        );
        // 7.3.2: one byte.
        protocol(&frame(true, OP_CLOSE, b"a"));
        // 7.3.4: code and reason.
        let mut payload = vec![0x03, 0xe8];
        payload.extend_from_slice(b"Hello World!");
        assert_eq!(
            run_ok(BIG, &frame(true, OP_CLOSE, &payload)),
            vec![Message::Close(Some((1000, "Hello World!".to_string())))]
        );
        // 7.3.5: 123-byte reason (125-byte payload) is fine.
        let reason = "*".repeat(123);
        let mut payload = vec![0x03, 0xe8];
        payload.extend_from_slice(reason.as_bytes());
        assert_eq!(
            run_ok(BIG, &frame(true, OP_CLOSE, &payload)),
            vec![Message::Close(Some((1000, reason)))]
        );
        // 7.3.6: 124-byte reason fails.
        let mut payload = vec![0x03, 0xe8];
        payload.extend_from_slice(&[b'*'; 124]);
        protocol(&frame(true, OP_CLOSE, &payload));
        // 7.5.1: invalid UTF-8 in the reason.
        let mut payload = vec![0x03, 0xe8];
        payload
            .extend_from_slice(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited");
        assert_eq!(
            run_err(BIG, &frame(true, OP_CLOSE, &payload)).1,
            Violation::InvalidUtf8
        );
        // 7.7.x valid and 7.9.x / 7.13.x invalid codes are covered by `close_codes`.
        // A close inside a fragmented message is a control frame like any other.
        let input = concat(&[frame(false, OP_TEXT, b"part"), frame(true, OP_CLOSE, b"")]);
        assert_eq!(run_ok(BIG, &input), vec![Message::Close(None)]);
    }

    #[test]
    fn autobahn_9_and_10_large_and_auto_fragmented_messages() {
        // 9.1.x-style: 1 MiB text in one frame and in 64 KiB fragments.
        let payload = "a".repeat(1 << 20);
        assert_eq!(run_ok(BIG, &text(&payload)), vec![text_msg(&payload)]);
        let frames: Vec<Vec<u8>> = payload
            .as_bytes()
            .chunks(1 << 16)
            .enumerate()
            .map(|(i, c)| {
                let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
                frame((i + 1) << 16 >= payload.len(), opcode, c)
            })
            .collect();
        assert_eq!(run_ok(BIG, &concat(&frames)), vec![text_msg(&payload)]);
        // 10.1.1: 65536 bytes in 1300-byte fragments.
        let payload = "*".repeat(65536);
        let chunks: Vec<&[u8]> = payload.as_bytes().chunks(1300).collect();
        let frames: Vec<Vec<u8>> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
                frame(i + 1 == chunks.len(), opcode, c)
            })
            .collect();
        assert_eq!(run_ok(BIG, &concat(&frames)), vec![text_msg(&payload)]);
    }

    #[test]
    fn server_frame_payload_undoes_text_frame() {
        for len in [0usize, 125, 126, 65_535, 65_536] {
            let payload = vec![b'x'; len];
            assert_eq!(server_frame_payload(&text_frame(&payload)), &payload[..]);
        }
    }
}

#[cfg(test)]
mod client_side_tests {
    use super::*;

    #[test]
    fn masked_frames_decode_as_client_messages() {
        for len in [0usize, 5, 125, 126, 65_535, 65_536] {
            let payload = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let mut out = Vec::new();
            encode_masked_into(Opcode::Text, payload.as_bytes(), [1, 2, 3, 4], &mut out);
            let head = frame_head(&out).unwrap();
            assert!(head.masked && head.fin && !head.rsv);
            assert_eq!(head.opcode, Some(Opcode::Text));
            assert_eq!(head.frame_len(), out.len() as u64);
            let mut decoder = Decoder::new(1 << 20);
            let (used, message) = decoder.decode(&out).unwrap();
            assert_eq!(used, out.len());
            assert_eq!(message, Some(Message::Text(payload.into_bytes())));
        }
        let mut out = Vec::new();
        encode_masked_into(Opcode::Pong, b"hi", [9, 8, 7, 6], &mut out);
        let (_, message) = Decoder::new(10).decode(&out).unwrap();
        assert_eq!(message, Some(Message::Pong(b"hi".to_vec())));
    }

    #[test]
    fn frame_head_reads_server_frames() {
        for len in [0usize, 125, 126, 65_535, 65_536] {
            let frame = text_frame(&vec![b'x'; len]);
            let head = frame_head(&frame).unwrap();
            assert_eq!(head.opcode, Some(Opcode::Text));
            assert!(head.fin && !head.masked);
            assert_eq!(head.payload_len, len as u64);
            assert_eq!(&frame[head.header_len..], server_frame_payload(&frame));
            // A header cut anywhere is not readable yet.
            assert_eq!(frame_head(&frame[..head.header_len - 1]), None);
        }
        let close = close_frame(1000, "bye");
        let head = frame_head(&close).unwrap();
        assert_eq!(head.opcode, Some(Opcode::Close));
        assert_eq!(frame_head(&[0x83, 0]).unwrap().opcode, None);
        assert!(frame_head(&[0xC1, 0]).unwrap().rsv);
    }
}
