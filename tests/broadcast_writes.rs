//! Broadcast frames on their way out: the shard's write batch (one io_uring submission
//! for a whole fan-out) and the connection's own writer share each outbox. A socket
//! that takes only part of a frame, or none, hands the rest to the writer; these tests
//! make that happen with large events and small receive windows, and check that every
//! subscriber still gets every event whole, once and in order, and that one that never
//! reads is cut off without costing the others anything.

mod support;

use std::ops::Range;
use std::time::Duration;

use serde_json::{json, Value};
use support::http_api::{batch, json_of};
use support::raw::{tiny_receiver, wait_closed, RawEvent, RawWs, OP_TEXT};
use support::{TestServer, APP_KEY};

const CHANNEL: &str = "big-events";
/// Events per `batch_events` request (the API's own limit).
const PER_REQUEST: usize = 10;
/// Bytes of each event's data: far over what a small window takes in one write.
const DATA_BYTES: usize = 30_000;

fn server(outbound_buffer: usize) -> TestServer {
    TestServer::builder()
        .config(&support::app_config("").replace(
            "port = 0\n",
            &format!("port = 0\noutbound_buffer = {outbound_buffer}\nmax_request_size = 1000000\n"),
        ))
        .cores(1)
        .start()
}

/// Event `seq`'s data: its number repeated, so a misplaced or repeated byte range in
/// any frame shows.
fn data_of(seq: usize) -> String {
    let unit = format!("{seq:06}|");
    unit.repeat(DATA_BYTES / unit.len())
}

/// Publish events `seqs` on the channel, `PER_REQUEST` per request, in order.
fn publish(server: &TestServer, seqs: Range<usize>) {
    for first in seqs.clone().step_by(PER_REQUEST) {
        let events: Vec<Value> = (first..(first + PER_REQUEST).min(seqs.end))
            .map(|seq| json!({"name": "big", "channel": CHANNEL, "data": data_of(seq)}))
            .collect();
        let r = batch(server, &json!({ "batch": events }));
        assert_eq!(r.status, 200, "batch_events: {r:?} {}", json_of(&r));
    }
}

/// A raw subscriber whose socket has a small receive buffer.
fn small_window_subscriber(addr: &str) -> RawWs {
    let mut ws = RawWs::upgrade_on(tiny_receiver(addr), addr, &format!("/app/{APP_KEY}"), &[]);
    assert_eq!(ws.expect_json()["event"], "pusher:connection_established");
    subscribe(&mut ws);
    ws
}

fn subscribe(ws: &mut RawWs) {
    ws.send_text(&json!({"event": "pusher:subscribe", "data": {"channel": CHANNEL}}).to_string());
    assert_eq!(
        ws.expect_json()["event"],
        "pusher_internal:subscription_succeeded"
    );
}

/// Read events `seqs` and check each is the next one, whole.
fn expect_events_in_order(ws: &mut RawWs, seqs: Range<usize>, who: &str) {
    let count = seqs.end;
    for seq in seqs {
        let frame = match ws.read_frame(Duration::from_secs(20)) {
            RawEvent::Frame(frame) => frame,
            other => panic!("{who}: event {seq} of {count}: got {other:?}"),
        };
        assert_eq!(frame.opcode, OP_TEXT, "{who}: event {seq}: {frame:?}");
        let event: Value = serde_json::from_slice(&frame.payload)
            .unwrap_or_else(|e| panic!("{who}: event {seq} is not JSON ({e})"));
        assert_eq!(event["event"], "big", "{who}: event {seq}");
        assert_eq!(event["channel"], CHANNEL, "{who}: event {seq}");
        let data = event["data"].as_str().unwrap_or_default();
        assert!(
            data == data_of(seq),
            "{who}: event {seq} arrived as {}… ({} bytes)",
            &data[..data.len().min(40)],
            data.len()
        );
    }
}

#[test]
fn a_slow_reader_gets_every_large_broadcast_whole_once_and_in_order() {
    const EVENTS: usize = 200;
    // Room for everything (6 MB): nobody is cut off, every write that stops part way
    // must resume where it stopped.
    let server = server(16 * 1024 * 1024);
    let addr = server.addr();
    let mut slow = small_window_subscriber(&addr);
    let mut fast = RawWs::upgrade(&addr, &format!("/app/{APP_KEY}"), &[]);
    assert_eq!(fast.expect_json()["event"], "pusher:connection_established");
    subscribe(&mut fast);
    let reader = std::thread::spawn(move || {
        expect_events_in_order(&mut fast, 0..EVENTS, "fast subscriber");
        fast
    });

    // One request alone: its 300 KB leave in one batch that the small window cannot
    // take, and with nothing published after it, only the hand-over to the
    // connection's writer gets the rest out.
    publish(&server, 0..PER_REQUEST);
    expect_events_in_order(&mut slow, 0..PER_REQUEST, "slow subscriber");
    // Then everything else while the slow subscriber is not reading at all.
    publish(&server, PER_REQUEST..EVENTS);
    let mut fast = reader.join().expect("the fast subscriber got every event");
    expect_events_in_order(&mut slow, PER_REQUEST..EVENTS, "slow subscriber");
    // Nothing more (no repeated tail of a frame) is queued for either.
    slow.expect_silence(Duration::from_millis(300));
    fast.expect_silence(Duration::from_millis(1));
}

#[test]
fn a_subscriber_that_never_reads_broadcasts_is_cut_off_and_the_others_get_everything() {
    // 600 × 30 KB = 18 MB: more than the bound plus anything loopback buffers (up to
    // ~7 MB seen) for a client that reads nothing.
    const EVENTS: usize = 600;
    // The default bound; one request queues 300 KB for every subscriber before any of
    // it is written, so the bound must hold that much.
    let server = server(1024 * 1024);
    let addr = server.addr();
    let mut stalled = small_window_subscriber(&addr);
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let mut ws = RawWs::upgrade(&addr, &format!("/app/{APP_KEY}"), &[]);
            assert_eq!(ws.expect_json()["event"], "pusher:connection_established");
            subscribe(&mut ws);
            std::thread::spawn(move || {
                expect_events_in_order(&mut ws, 0..EVENTS, &format!("reader {i}"));
                ws
            })
        })
        .collect();

    publish(&server, 0..EVENTS);
    for reader in readers {
        let mut ws = reader.join().expect("every reader got every event");
        ws.assert_alive();
    }
    // The stalled subscriber's stream ends (Close 4100, then FIN) long before all it
    // was sent could have arrived.
    let (ending, bytes) = wait_closed(&mut stalled.stream, Duration::from_secs(15));
    eprintln!("stalled subscriber: {bytes} bytes, then {ending:?}");
    assert!(
        bytes < EVENTS * DATA_BYTES / 2,
        "{bytes} bytes reached a client that never read: not cut off"
    );
}
