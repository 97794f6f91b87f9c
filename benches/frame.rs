//! The WebSocket frame codec (`reverb_shard::ws::frame`), measured on the messages the
//! server handles all day.
//!
//! - `frame/encode_text_200`: `text_frame` of a typical 200-byte Pusher event (what
//!   `Delivery::new` does once per broadcast and `Connection::send_text` once per
//!   direct message): one `Vec` sized for the 4-byte header plus the payload.
//! - `frame/encode_text_into_200`: `encode_text_into` of the same event into a buffer
//!   that is reused (cleared) every time, i.e. the encoding without the allocation.
//! - `frame/decode_masked_200`: `Decoder::decode` of one masked, unfragmented client
//!   text frame with a 200-byte payload (a typical `pusher:subscribe` or client event):
//!   header checks, unmasking, UTF-8 validation and the payload's `Vec`.
//! - `frame/decode_masked_16k`: the same for a 16 KiB text payload, to show the
//!   per-byte cost of unmasking and validation.
//! - `frame/decode_fragmented_3x200`: one 600-byte text message sent as three masked
//!   fragments of 200 bytes (assembly buffer, validation per fragment).
//!
//! Criterion's throughput is in bytes of payload. Run with
//! `cargo bench --bench frame` (criterion's command-line options apply).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reverb_shard::ws::frame::{encode_text_into, text_frame, Decoder, Message};

/// Reverb's default `max_message_size`.
const MAX_MESSAGE: usize = 10_000 * 1024;

/// A Pusher event as subscribers receive it, padded to exactly `len` bytes of JSON.
fn event(len: usize) -> Vec<u8> {
    let head =
        r#"{"event":"order.shipped","channel":"private-orders.42","data":"{\"id\":42,\"note\":\""#;
    let tail = r#"\"}"}"#;
    let filler = len - head.len() - tail.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(head.as_bytes());
    out.extend((0..filler).map(|i| b'a' + (i % 26) as u8));
    out.extend_from_slice(tail.as_bytes());
    assert_eq!(out.len(), len);
    assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
    out
}

/// A masked client frame (RFC 6455 5.2) with the given FIN/opcode byte.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![b0];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
    out
}

/// Decode one whole frame (or a run of frames) and return the finished message.
fn decode_all(decoder: &mut Decoder, mut input: &[u8]) -> Message {
    loop {
        let (used, message) = decoder.decode(input).expect("a valid client frame");
        assert!(used > 0, "the input holds whole frames");
        input = &input[used..];
        if let Some(message) = message {
            assert!(input.is_empty());
            return message;
        }
    }
}

fn encode(c: &mut Criterion) {
    let payload = event(200);
    assert_eq!(text_frame(&payload).len(), 204);
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("encode_text_200", |b| {
        b.iter(|| text_frame(black_box(&payload)))
    });
    let mut out = Vec::with_capacity(256);
    group.bench_function("encode_text_into_200", |b| {
        b.iter(|| {
            out.clear();
            encode_text_into(black_box(&payload), &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for (name, len) in [("decode_masked_200", 200), ("decode_masked_16k", 16 << 10)] {
        let payload = event(len);
        let frame = client_frame(0x81, &payload);
        let mut decoder = Decoder::new(MAX_MESSAGE);
        assert_eq!(decode_all(&mut decoder, &frame), Message::Text(payload));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            b.iter(|| decode_all(&mut decoder, black_box(&frame)))
        });
    }

    let payload = event(600);
    let mut frames = client_frame(0x01, &payload[..200]);
    frames.extend(client_frame(0x00, &payload[200..400]));
    frames.extend(client_frame(0x80, &payload[400..]));
    let mut decoder = Decoder::new(MAX_MESSAGE);
    assert_eq!(decode_all(&mut decoder, &frames), Message::Text(payload));
    group.throughput(Throughput::Bytes(600));
    // The server keeps one decoder per connection; the finished message takes the
    // assembly buffer with it, so every iteration starts from the same empty state (and
    // allocates that buffer again, as the server does per fragmented message).
    group.bench_function("decode_fragmented_3x200", |b| {
        b.iter(|| decode_all(&mut decoder, black_box(&frames)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = encode, decode
}
criterion_main!(benches);
