//! An idle runtime sleeps: its shards cost (next to) no CPU while nothing happens.
//!
//! This is alone in its own test binary because it measures the whole process's CPU
//! time, which other tests running in parallel would add to.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::within;
use shards::Builder;

/// User + system CPU time of this whole process (every thread), in seconds.
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[test]
fn two_idle_shards_use_almost_no_cpu() {
    let used = within(60, || {
        let runtime = Builder::new().shards(2).build::<u64>().unwrap();
        let stop = runtime.stop_handle();
        let started = Arc::new(AtomicUsize::new(0));
        let seen = started.clone();
        let meter = thread::spawn(move || {
            while seen.load(Ordering::Acquire) < 2 {
                thread::sleep(Duration::from_millis(5));
            }
            // Let the start-up work settle, then measure one idle second.
            thread::sleep(Duration::from_millis(200));
            let before = process_cpu_seconds();
            thread::sleep(Duration::from_secs(1));
            let used = process_cpu_seconds() - before;
            stop.stop();
            used
        });
        runtime
            .run(move |shard| {
                let started = started.clone();
                async move {
                    shard.mesh().serve(|_| {});
                    started.fetch_add(1, Ordering::AcqRel);
                    shard.stopped().await;
                }
            })
            .unwrap();
        meter.join().unwrap()
    });
    eprintln!("two idle shards used {used:.4} s of CPU in 1 s");
    assert!(used < 0.2, "two idle shards used {used:.3} s of CPU in 1 s");
}
