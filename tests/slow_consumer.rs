//! The outbound bound (`outbound_buffer`): a client that makes the server answer far more
//! than it reads is cut off, while a fast neighbour on the same shard keeps being served.
//!
//! Channels do not exist yet, so the load is the server's own answers: thousands of
//! pipelined `pusher:ping`s, each answered by a `pusher:pong` that the client never reads.

mod support;

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::raw::{frame_bytes, tiny_receiver, wait_closed, FIN, OP_TEXT};
use support::{RawWs, TestServer, APP_KEY};

/// Bytes the server may queue per connection in this test.
const OUTBOUND_BUFFER: usize = 65_536;
/// Pings per write; each is answered by a 25-byte pong frame.
const PINGS_PER_CHUNK: usize = 2_000;
/// At most this many pings: ~25 MB of pongs, far more than the outbound bound plus any
/// kernel buffering. (tcp_wmem max is 4 MB by default, but loopback has been seen to
/// take 7 MB from the server while this client read nothing: 300,000 pings were not
/// always enough to overflow.)
const MAX_PINGS: usize = 1_000_000;
/// The whole flood and the cut-off must happen within this.
const FLOOD_LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_client_that_never_reads_is_cut_off_and_its_neighbour_is_not() {
    let server = TestServer::builder()
        .config(&support::app_config("").replace(
            "port = 0\n",
            &format!("port = 0\noutbound_buffer = {OUTBOUND_BUFFER}\n"),
        ))
        .start();
    let addr = server.addr();

    // The fast neighbour: ping/pong round trips on the same shard for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let (mut neighbour, _) = server.connect_established();
    let neighbour_thread = {
        let (stop, rounds) = (stop.clone(), rounds.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                neighbour.assert_alive();
                rounds.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
            neighbour
        })
    };

    // The slow consumer: handshake and connection_established are read, then never again.
    let mut slow = RawWs::upgrade_on(tiny_receiver(&addr), &addr, &format!("/app/{APP_KEY}"), &[]);
    assert_eq!(slow.expect_json()["event"], "pusher:connection_established");
    let mut stream = slow.stream.try_clone().unwrap();

    let ping = frame_bytes(FIN | OP_TEXT, true, br#"{"event":"pusher:ping"}"#);
    let chunk: Vec<u8> = ping.repeat(PINGS_PER_CHUNK);
    let started = Instant::now();
    let mut pings = 0;
    let mut write_failed = None;
    'flood: while pings < MAX_PINGS && started.elapsed() < FLOOD_LIMIT {
        let mut at = 0;
        while at < chunk.len() {
            match stream.write(&chunk[at..]) {
                Ok(0) => {
                    write_failed = Some(ErrorKind::WriteZero);
                    break 'flood;
                }
                Ok(n) => at += n,
                // The server is not reading right now (busy, or it stopped reading us).
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if started.elapsed() >= FLOOD_LIMIT {
                        break 'flood;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Reset or broken pipe: the server closed the connection.
                Err(e) => {
                    write_failed = Some(e.kind());
                    break 'flood;
                }
            }
        }
        pings += PINGS_PER_CHUNK;
    }

    // Now read: whatever pongs were in flight come out, then the stream must end. A
    // server that kept the connection would leave it open (a timeout here).
    let (ending, bytes) = wait_closed(&mut stream, Duration::from_secs(15));
    eprintln!(
        "slow consumer: {pings} pings sent in {:?}, write failure {write_failed:?}, \
         then {bytes} bytes and {ending:?}",
        started.elapsed()
    );
    // It was cut off long before all its pongs were delivered.
    assert!(
        bytes < pings * 25,
        "all {pings} pongs were delivered ({bytes} bytes): not cut off"
    );

    // The neighbour was served throughout and still is.
    stop.store(true, Ordering::Relaxed);
    let mut neighbour = neighbour_thread
        .join()
        .expect("the neighbour kept getting pongs");
    assert!(rounds.load(Ordering::Relaxed) > 0);
    neighbour.assert_alive();
    // And the shard accepts new clients.
    let (mut fresh, _) = server.connect_established();
    fresh.assert_alive();
}

#[test]
fn a_client_that_pipelines_but_reads_everything_is_not_cut_off() {
    let server = TestServer::builder()
        .config(&support::app_config("").replace(
            "port = 0\n",
            &format!("port = 0\noutbound_buffer = {OUTBOUND_BUFFER}\n"),
        ))
        .start();
    const PINGS: usize = 100_000;
    const PONG: &[u8] = br#"{"event":"pusher:pong"}"#;
    let (ws, _) = RawWs::established(&server.addr());
    let mut writer = ws.stream.try_clone().unwrap();
    let mut reader = ws.stream.try_clone().unwrap();
    // Read every answer as fast as it comes, on its own thread.
    let reading = std::thread::spawn(move || {
        use std::io::Read;
        reader
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let want = PINGS * (PONG.len() + 2);
        let mut got = Vec::with_capacity(want);
        let mut chunk = vec![0u8; 64 * 1024];
        while got.len() < want {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
        got
    });
    // Write the pings in big bursts, far more than the outbound bound in total.
    let ping = frame_bytes(FIN | OP_TEXT, true, br#"{"event":"pusher:ping"}"#);
    let burst = ping.repeat(PINGS_PER_CHUNK);
    writer
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for _ in 0..PINGS / PINGS_PER_CHUNK {
        writer.write_all(&burst).expect("the server keeps reading");
    }
    let got = reading.join().unwrap();
    // Every answer arrived, as unmasked single-frame pongs; no Close 4100.
    let mut expected = vec![0x81, PONG.len() as u8];
    expected.extend_from_slice(PONG);
    assert_eq!(
        got.len(),
        PINGS * expected.len(),
        "got {} of {PINGS} pongs; ends with {:?}",
        got.len() / expected.len(),
        String::from_utf8_lossy(&got[got.len().saturating_sub(40)..])
    );
    assert!(got.chunks(expected.len()).all(|c| c == expected));
}
