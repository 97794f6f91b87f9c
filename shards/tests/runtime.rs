//! Starting, stopping and failing: the runtime's own contract. At most 2 shards, every
//! test bounded in time.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::within;
use shards::{allowed_cpus, Builder, Error};

const DEADLINE: u64 = 60;

#[test]
fn more_shards_than_allowed_cpus_is_an_error() {
    let allowed = allowed_cpus().unwrap().len();
    match Builder::new().shards(allowed + 1).build::<()>() {
        Err(Error::TooManyShards { asked, allowed: a }) => {
            assert_eq!(asked, allowed + 1);
            assert_eq!(a, allowed);
        }
        Err(other) => panic!("expected TooManyShards, got {other}"),
        Ok(_) => panic!("expected TooManyShards, got a runtime"),
    }
}

#[test]
fn zero_shards_is_an_error() {
    assert!(matches!(
        Builder::new().shards(0).build::<()>(),
        Err(Error::NoShards)
    ));
}

#[test]
fn the_default_is_one_shard_per_allowed_cpu() {
    let runtime = Builder::new().build::<()>().unwrap();
    assert_eq!(runtime.shards(), allowed_cpus().unwrap().len());
}

#[test]
fn a_stop_from_another_thread_resolves_stopped_on_every_shard() {
    let results = within(DEADLINE, || {
        let runtime = Builder::new()
            .shards(2)
            .name("stoptest")
            .build::<()>()
            .unwrap();
        let stop = runtime.stop_handle();
        let started = Arc::new(AtomicUsize::new(0));
        let seen = started.clone();
        let stopper = thread::spawn(move || {
            while seen.load(Ordering::Acquire) < 2 {
                thread::sleep(Duration::from_millis(5));
            }
            assert!(!stop.is_stopped());
            stop.stop();
            // Idempotent.
            stop.stop();
            assert!(stop.is_stopped());
        });
        let results = runtime
            .run(move |shard| {
                let started = started.clone();
                async move {
                    let name = thread::current().name().map(str::to_owned);
                    let signal = shard.stop_signal();
                    let before = shard.is_stopping();
                    started.fetch_add(1, Ordering::AcqRel);
                    // A spawned task sees the stop through its own clone of the signal.
                    let task = glommio::spawn_local(async move {
                        signal.wait().await;
                        signal.fired()
                    });
                    shard.stopped().await;
                    (shard.id(), name, before, shard.is_stopping(), task.await)
                }
            })
            .unwrap();
        stopper.join().unwrap();
        results
    });
    assert_eq!(
        results,
        vec![
            (0, Some("stoptest-0".to_owned()), false, true, true),
            (1, Some("stoptest-1".to_owned()), false, true, true),
        ]
    );
}

#[test]
fn a_stop_before_run_is_seen_at_once() {
    let results = within(DEADLINE, || {
        let runtime = Builder::new().shards(2).build::<()>().unwrap();
        runtime.stop_handle().stop();
        runtime
            .run(|shard| async move {
                shard.stopped().await;
                shard.id()
            })
            .unwrap()
    });
    assert_eq!(results, vec![0, 1]);
}

#[test]
fn a_panic_in_one_shard_ends_run_with_an_error_instead_of_hanging() {
    let outcome = within(DEADLINE, || {
        Builder::new()
            .shards(2)
            .build::<()>()
            .unwrap()
            .run(|shard| async move {
                if shard.id() == 1 {
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                    panic!("shard 1 fails on purpose");
                }
                // Shard 0 never looks at the stop signal: it must be aborted.
                futures_lite::future::pending::<()>().await;
            })
    });
    assert!(
        matches!(outcome, Err(Error::ShardPanicked(1))),
        "{outcome:?}"
    );
}

#[test]
fn a_panic_in_a_handler_fails_run_while_the_asker_waits() {
    let outcome = within(DEADLINE, || {
        Builder::new()
            .shards(2)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                shard.mesh().serve(|incoming| {
                    if incoming.msg == 13 {
                        panic!("handler fails on purpose");
                    }
                });
                if shard.id() == 0 {
                    // The answer never comes: the asker is aborted, or sees NoReply.
                    let _ = shard.mesh().ask(1, 13).await;
                }
                shard.stopped().await;
            })
    });
    assert!(
        matches!(outcome, Err(Error::ShardPanicked(1))),
        "{outcome:?}"
    );
}

#[test]
fn a_runtime_can_run_again_after_a_panic() {
    // A panic must leave nothing behind that breaks the next runtime in the process.
    let outcome = within(DEADLINE, || {
        let _ = Builder::new()
            .shards(2)
            .build::<()>()
            .unwrap()
            .run(|shard| async move {
                if shard.id() == 0 {
                    panic!("shard 0 fails on purpose");
                }
                shard.stopped().await;
            });
        Builder::new()
            .shards(2)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                shard
                    .mesh()
                    .serve(|incoming| incoming.reply.unwrap().send(incoming.msg));
                let sum = shard.mesh().map_reduce(2, 0, |acc, n| acc + n).await;
                shard.stop_handle().stop();
                shard.stopped().await;
                sum
            })
    });
    // Each shard may have stopped the other before its map_reduce reached it.
    let sums = outcome.unwrap();
    assert!(sums.iter().all(|&sum| sum == 2 || sum == 4), "{sums:?}");
}
