//! Signals: SIGINT/SIGTERM stop the runtime with the signal as the cause, and a hook
//! given to `on_signal` decides what another signal means (here: count SIGUSR2, stop on
//! SIGUSR1). Each test uses its own signals, so tests running side by side in this
//! process never see each other's (signals go to the whole process).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::within;
use shards::{Builder, StopCause};

const DEADLINE: u64 = 60;

/// Send `signal` to this process.
fn raise(signal: i32) {
    // SAFETY: kill(2) on our own pid; every signal used here has a handler installed.
    unsafe { libc::kill(libc::getpid(), signal) };
}

#[test]
fn sigterm_stops_with_the_signal_as_cause() {
    let causes = within(DEADLINE, || {
        let runtime = Builder::new()
            .shards(1)
            .stop_on_signals(true)
            .build::<()>()
            .unwrap();
        let stop = runtime.stop_handle();
        assert_eq!(stop.cause(), None);
        let started = Arc::new(AtomicUsize::new(0));
        let seen = started.clone();
        let signaller = thread::spawn(move || {
            while seen.load(Ordering::Acquire) == 0 {
                thread::sleep(Duration::from_millis(5));
            }
            raise(libc::SIGTERM);
        });
        let causes = runtime
            .run(move |shard| {
                let started = started.clone();
                async move {
                    started.fetch_add(1, Ordering::AcqRel);
                    shard.stopped().await;
                    shard.stop_cause()
                }
            })
            .unwrap();
        signaller.join().unwrap();
        // The first cause wins: a later plain stop does not overwrite it.
        stop.stop();
        assert_eq!(stop.cause(), Some(StopCause::Signal(libc::SIGTERM)));
        causes
    });
    assert_eq!(causes, vec![Some(StopCause::Signal(libc::SIGTERM))]);
}

#[test]
fn a_hook_decides_what_a_signal_means() {
    let (causes, counted) = within(DEADLINE, || {
        let counted = Arc::new(AtomicUsize::new(0));
        let counter = counted.clone();
        let runtime = Builder::new()
            .shards(2)
            // Not stopping: the runtime keeps running however often it arrives.
            .on_signal(libc::SIGUSR2, move |stop| {
                assert!(!stop.is_stopped());
                counter.fetch_add(1, Ordering::AcqRel);
            })
            .on_signal(libc::SIGUSR1, |stop| {
                stop.stop_with(StopCause::Signal(libc::SIGUSR1))
            })
            .build::<()>()
            .unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let seen = started.clone();
        let count = counted.clone();
        let signaller = thread::spawn(move || {
            while seen.load(Ordering::Acquire) < 2 {
                thread::sleep(Duration::from_millis(5));
            }
            for expected in 1..=3 {
                raise(libc::SIGUSR2);
                // Signals of one kind merge while pending: wait for each to be handled.
                while count.load(Ordering::Acquire) < expected {
                    thread::sleep(Duration::from_millis(5));
                }
            }
            raise(libc::SIGUSR1);
        });
        let causes = runtime
            .run(move |shard| {
                let started = started.clone();
                async move {
                    started.fetch_add(1, Ordering::AcqRel);
                    shard.stopped().await;
                    shard.stop_cause()
                }
            })
            .unwrap();
        signaller.join().unwrap();
        (causes, counted.load(Ordering::Acquire))
    });
    assert_eq!(counted, 3, "the SIGUSR2 hook runs once per signal");
    assert_eq!(causes, vec![Some(StopCause::Signal(libc::SIGUSR1)); 2]);
}

#[test]
fn a_plain_stop_is_a_request() {
    let causes = within(DEADLINE, || {
        let runtime = Builder::new().shards(1).build::<()>().unwrap();
        let stop = runtime.stop_handle();
        stop.stop();
        // Later causes are ignored.
        stop.stop_with(StopCause::Signal(libc::SIGHUP));
        runtime
            .run(|shard| async move {
                shard.stopped().await;
                shard.stop_cause()
            })
            .unwrap()
    });
    assert_eq!(causes, vec![Some(StopCause::Requested)]);
}
