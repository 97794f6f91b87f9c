//! The mesh on a real runtime: real threads, real executors, at most 2 shards (the
//! machine this runs on may have only 2 CPUs). Every test stops by itself and runs
//! under a deadline.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::within;
use shards::{Builder, NoReply, SendError};

const DEADLINE: u64 = 60;

#[test]
fn send_to_delivers() {
    let results = within(DEADLINE, || {
        Builder::new()
            .shards(2)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                let got = Rc::new(RefCell::new(Vec::new()));
                let stop = shard.stop_handle();
                let sink = got.clone();
                shard.mesh().serve(move |incoming| {
                    sink.borrow_mut().push((incoming.from, incoming.msg));
                    stop.stop();
                });
                if shard.id() == 0 {
                    shard.mesh().send_to(1, 42).await.unwrap();
                }
                shard.stopped().await;
                let got = got.borrow().clone();
                got
            })
            .unwrap()
    });
    assert_eq!(results, vec![vec![], vec![(0, 42)]]);
}

#[derive(Clone, Debug, PartialEq)]
enum Msg {
    Data(usize),
    Fence,
}

#[test]
fn broadcast_sends_one_copy_to_each_other_shard_and_none_to_self() {
    let finished = Arc::new(AtomicUsize::new(0));
    let results = within(DEADLINE, move || {
        Builder::new()
            .shards(2)
            .build::<Msg>()
            .unwrap()
            .run(move |shard| {
                let finished = finished.clone();
                async move {
                    let got = Rc::new(RefCell::new(Vec::new()));
                    let sink = got.clone();
                    shard.mesh().serve(move |incoming| match incoming.msg {
                        Msg::Data(n) => sink.borrow_mut().push((incoming.from, n)),
                        Msg::Fence => incoming.reply.unwrap().send(Msg::Fence),
                    });
                    let me = shard.id();
                    let unreachable = shard.mesh().broadcast(Msg::Data(100 + me)).await;
                    // Queues are FIFO per pair: once the fence is answered, the other
                    // shard has handled everything this one broadcast.
                    let other = 1 - me;
                    assert_eq!(shard.mesh().ask(other, Msg::Fence).await, Ok(Msg::Fence));
                    if finished.fetch_add(1, Ordering::AcqRel) + 1 == shard.count() {
                        shard.stop_handle().stop();
                    }
                    shard.stopped().await;
                    let got = got.borrow().clone();
                    (unreachable, got)
                }
            })
            .unwrap()
    });
    assert_eq!(results, vec![(0, vec![(1, 101)]), (0, vec![(0, 100)])]);
}

#[test]
fn ask_gets_the_answer_from_another_shard_and_from_itself() {
    let results = within(DEADLINE, || {
        Builder::new()
            .shards(2)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                let me = shard.id() as u64;
                shard.mesh().serve(move |incoming| {
                    if let Some(reply) = incoming.reply {
                        reply.send(incoming.msg * 2 + me);
                    }
                });
                let mut answers = Vec::new();
                if shard.id() == 0 {
                    answers.push(shard.mesh().ask(1, 5).await);
                    answers.push(shard.mesh().ask(0, 7).await);
                    // Many asks in flight at once, all matched to their own answers.
                    let many: Vec<_> = (0..100).map(|n| shard.mesh().ask(1, n)).collect();
                    for (n, ask) in many.into_iter().enumerate() {
                        assert_eq!(ask.await, Ok(n as u64 * 2 + 1));
                    }
                    shard.stop_handle().stop();
                }
                shard.stopped().await;
                answers
            })
            .unwrap()
    });
    assert_eq!(results[0], vec![Ok(11), Ok(14)]);
}

#[test]
fn a_dropped_reply_fails_the_ask_with_no_reply() {
    let results = within(DEADLINE, || {
        Builder::new()
            .shards(2)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                // Drop every Reply unanswered.
                shard.mesh().serve(|incoming| drop(incoming.reply));
                let mut answers = Vec::new();
                if shard.id() == 0 {
                    answers.push(shard.mesh().ask(1, 1).await);
                    answers.push(shard.mesh().ask(0, 2).await);
                    // Not a shard.
                    answers.push(shard.mesh().ask(7, 3).await);
                    assert_eq!(shard.mesh().send_to(7, 4).await, Err(SendError::Closed(4)));
                    assert_eq!(shard.mesh().try_send_to(7, 5), Err(SendError::Closed(5)));
                    shard.stop_handle().stop();
                }
                shard.stopped().await;
                answers
            })
            .unwrap()
    });
    assert_eq!(results[0], vec![Err(NoReply), Err(NoReply), Err(NoReply)]);
}

#[test]
fn an_ask_to_a_shard_that_ends_fails_instead_of_hanging() {
    let results = within(DEADLINE, || {
        Builder::new()
            .shards(2)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                if shard.id() == 1 {
                    // Keep the first Reply without answering, then end this shard.
                    let held = Rc::new(RefCell::new(Vec::new()));
                    let got = Rc::new(AtomicBool::new(false));
                    let (sink, seen) = (held.clone(), got.clone());
                    shard.mesh().serve(move |incoming| {
                        sink.borrow_mut().extend(incoming.reply);
                        seen.store(true, Ordering::Release);
                    });
                    while !got.load(Ordering::Acquire) {
                        glommio::timer::sleep(Duration::from_millis(5)).await;
                    }
                    return vec![];
                }
                let pending = shard.mesh().ask(1, 1).await;
                // Shard 1 has ended by now: a new ask fails at once.
                let after = shard.mesh().ask(1, 2).await;
                shard.stop_handle().stop();
                vec![pending, after]
            })
            .unwrap()
    });
    assert_eq!(results[0], vec![Err(NoReply), Err(NoReply)]);
}

#[test]
fn map_reduce_folds_every_shards_answer_in_shard_order() {
    let results = within(DEADLINE, || {
        Builder::new()
            .shards(2)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                let me = shard.id() as u64;
                shard.mesh().serve(move |incoming| {
                    if let Some(reply) = incoming.reply {
                        reply.send(incoming.msg + me);
                    }
                });
                let mut out = None;
                if shard.id() == 0 {
                    let sum = shard.mesh().map_reduce(10, 0, |acc, n| acc + n).await;
                    let order = shard
                        .mesh()
                        .map_reduce(10, Vec::new(), |mut acc, n| {
                            acc.push(n);
                            acc
                        })
                        .await;
                    let exact = shard.mesh().try_map_reduce(1, 0, |acc, n| acc + n).await;
                    out = Some((sum, order, exact));
                    shard.stop_handle().stop();
                }
                shard.stopped().await;
                out
            })
            .unwrap()
    });
    assert_eq!(results[0], Some((21, vec![10, 11], Ok(3))));
}

#[test]
fn try_map_reduce_fails_when_a_shard_cannot_answer() {
    let results = within(DEADLINE, || {
        Builder::new()
            .shards(2)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                let me = shard.id();
                shard.mesh().serve(move |incoming| {
                    // Shard 1 never answers.
                    if me == 0 {
                        incoming.reply.unwrap().send(1);
                    }
                });
                let mut out = None;
                if me == 0 {
                    let partial = shard.mesh().map_reduce(0, 0, |acc, n| acc + n).await;
                    let exact = shard.mesh().try_map_reduce(0, 0, |acc, n| acc + n).await;
                    out = Some((partial, exact));
                    shard.stop_handle().stop();
                }
                shard.stopped().await;
                out
            })
            .unwrap()
    });
    assert_eq!(results[0], Some((1, Err(NoReply))));
}

#[test]
fn messages_sent_before_serve_are_delivered_in_order_once_it_is_called() {
    const N: u64 = 100;
    let sent = Arc::new(AtomicBool::new(false));
    let results = within(DEADLINE, move || {
        Builder::new()
            .shards(2)
            .build::<u64>()
            .unwrap()
            .run(move |shard| {
                let sent = sent.clone();
                async move {
                    let got = Rc::new(RefCell::new(Vec::new()));
                    if shard.id() == 0 {
                        shard.mesh().serve(|_| {});
                        for n in 0..N {
                            shard.mesh().send_to(1, n).await.unwrap();
                        }
                        sent.store(true, Ordering::Release);
                        // An ask before serve is answered once serve is called.
                        let answer = shard.mesh().ask(1, 1000).await;
                        got.borrow_mut().push((1, answer.unwrap()));
                        shard.stop_handle().stop();
                    } else {
                        // Messages to itself before serve are kept too.
                        shard.mesh().send_to(1, 500).await.unwrap();
                        shard.mesh().try_send_to(1, 501).unwrap();
                        while !sent.load(Ordering::Acquire) {
                            glommio::timer::sleep(Duration::from_millis(5)).await;
                        }
                        // Let the receiving task pull everything into the early buffer.
                        glommio::timer::sleep(Duration::from_millis(50)).await;
                        let sink = got.clone();
                        shard.mesh().serve(move |incoming| {
                            sink.borrow_mut().push((incoming.from, incoming.msg));
                            if let Some(reply) = incoming.reply {
                                reply.send(incoming.msg + 1);
                            }
                        });
                    }
                    shard.stopped().await;
                    let got = got.borrow().clone();
                    got
                }
            })
            .unwrap()
    });
    let from0: Vec<u64> = results[1]
        .iter()
        .filter(|(from, _)| *from == 0)
        .map(|(_, n)| *n)
        .collect();
    let from1: Vec<u64> = results[1]
        .iter()
        .filter(|(from, _)| *from == 1)
        .map(|(_, n)| *n)
        .collect();
    let mut expected: Vec<u64> = (0..N).collect();
    expected.push(1000);
    assert_eq!(from0, expected);
    assert_eq!(from1, vec![500, 501]);
    assert_eq!(results[0], vec![(1, 1001)]);
}

#[test]
fn order_per_sender_is_kept_for_ten_thousand_messages_both_ways() {
    const N: u64 = 10_000;
    let finished = Arc::new(AtomicUsize::new(0));
    let results = within(DEADLINE, move || {
        Builder::new()
            .shards(2)
            // Small queues, so the senders wait for room many times.
            .queue_capacity(64)
            .build::<u64>()
            .unwrap()
            .run(move |shard| {
                let finished = finished.clone();
                async move {
                    let got = Rc::new(RefCell::new(Vec::with_capacity(N as usize)));
                    let sink = got.clone();
                    let stop = shard.stop_handle();
                    let count = shard.count();
                    shard.mesh().serve(move |incoming| {
                        let mut got = sink.borrow_mut();
                        got.push(incoming.msg);
                        if got.len() == N as usize
                            && finished.fetch_add(1, Ordering::AcqRel) + 1 == count
                        {
                            stop.stop();
                        }
                    });
                    let other = 1 - shard.id();
                    for n in 0..N {
                        shard.mesh().send_to(other, n).await.unwrap();
                    }
                    shard.stopped().await;
                    let got = got.borrow().clone();
                    got
                }
            })
            .unwrap()
    });
    let expected: Vec<u64> = (0..N).collect();
    assert_eq!(results[0], expected);
    assert_eq!(results[1], expected);
}

#[test]
fn try_send_to_reports_full_while_the_receiver_is_not_consuming() {
    // Both shards meet here: shard 1 then blocks its whole thread (so nothing on it
    // consumes) until shard 0 has filled the queue.
    let ready = Arc::new(Barrier::new(2));
    let go = Arc::new(Barrier::new(2));
    let results = within(DEADLINE, move || {
        Builder::new()
            .shards(2)
            .queue_capacity(4)
            .build::<u64>()
            .unwrap()
            .run(move |shard| {
                let (ready, go) = (ready.clone(), go.clone());
                async move {
                    let got = Rc::new(RefCell::new(Vec::new()));
                    let sink = got.clone();
                    let stop = shard.stop_handle();
                    shard.mesh().serve(move |incoming| {
                        sink.borrow_mut().push(incoming.msg);
                        if sink.borrow().len() == 4 {
                            stop.stop();
                        }
                    });
                    let mut outcome = Vec::new();
                    ready.wait();
                    if shard.id() == 0 {
                        for n in 0..5 {
                            outcome.push(shard.mesh().try_send_to(1, n));
                        }
                    }
                    let full_events = shard.mesh().full_events();
                    go.wait();
                    shard.stopped().await;
                    let got = got.borrow().clone();
                    (outcome, full_events, got)
                }
            })
            .unwrap()
    });
    let (outcome, full_events, _) = &results[0];
    assert_eq!(
        outcome,
        &vec![Ok(()), Ok(()), Ok(()), Ok(()), Err(SendError::Full(4))]
    );
    assert_eq!(*full_events, 1);
    assert_eq!(results[1].2, vec![0, 1, 2, 3]);
}

#[test]
fn a_single_shard_runs_without_a_mesh() {
    let results = within(DEADLINE, || {
        Builder::new()
            .shards(1)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                let got = Rc::new(RefCell::new(Vec::new()));
                let sink = got.clone();
                shard.mesh().serve(move |incoming| {
                    sink.borrow_mut().push(incoming.msg);
                    if let Some(reply) = incoming.reply {
                        reply.send(incoming.msg + 1);
                    }
                });
                shard.mesh().send_to(0, 1).await.unwrap();
                shard.mesh().try_send_to(0, 2).unwrap();
                let unreachable = shard.mesh().broadcast(3).await;
                let answer = shard.mesh().ask(0, 4).await;
                let sum = shard.mesh().map_reduce(10, 0, |acc, n| acc + n).await;
                let elsewhere = shard.mesh().send_to(1, 5).await;
                let got = got.borrow().clone();
                (got, unreachable, answer, sum, elsewhere)
            })
            .unwrap()
    });
    assert_eq!(
        results,
        vec![(vec![1, 2, 4, 10], 0, Ok(5), 11, Err(SendError::Closed(5)))]
    );
}

/// `post` never waits, yet everything shard 0 sends to shard 1 — posts mixed with
/// awaited sends, through a 4-message queue that is full most of the time — arrives in
/// the order it was sent.
#[test]
fn post_keeps_order_with_send_to_through_a_full_queue() {
    const N: u64 = 10_000;
    let results = within(DEADLINE, || {
        Builder::new()
            .shards(2)
            .queue_capacity(4)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                let got = Rc::new(RefCell::new(Vec::new()));
                let sink = got.clone();
                let stop = shard.stop_handle();
                shard.mesh().serve(move |incoming| {
                    sink.borrow_mut().push(incoming.msg);
                    if incoming.msg == N - 1 {
                        stop.stop();
                    }
                });
                if shard.id() == 0 {
                    for i in 0..N {
                        if i % 3 == 0 {
                            shard.mesh().send_to(1, i).await.unwrap();
                        } else {
                            shard.mesh().post(1, i);
                        }
                    }
                }
                shard.stopped().await;
                let got = got.borrow().clone();
                got
            })
            .unwrap()
    });
    assert_eq!(results[1], (0..N).collect::<Vec<_>>());
}

#[test]
fn parked_counts_posts_waiting_for_room_until_they_are_sent() {
    let results = within(DEADLINE, || {
        Builder::new()
            .shards(2)
            .queue_capacity(4)
            .build::<u64>()
            .unwrap()
            .run(|shard| async move {
                let stop = shard.stop_handle();
                shard.mesh().serve(move |incoming| {
                    if incoming.msg == 99 {
                        stop.stop();
                    }
                });
                let mut seen = (0, 0);
                if shard.id() == 0 {
                    // No await between the posts: at most the queue's capacity can go
                    // out at once, the rest waits in the outbox.
                    for i in 0..100 {
                        shard.mesh().post(1, i);
                    }
                    seen.0 = shard.mesh().parked();
                    while shard.mesh().parked() > 0 {
                        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                    }
                    seen.1 = shard.mesh().parked();
                }
                shard.stopped().await;
                seen
            })
            .unwrap()
    });
    // A handful fit in the queue (its capacity, rounded up by the channel).
    assert!(
        results[0].0 >= 90,
        "parked after 100 posts: {}",
        results[0].0
    );
    assert_eq!(results[0].1, 0);
}
