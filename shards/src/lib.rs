//! `shards`: a small thread-per-core runtime.
//!
//! Each shard is one OS thread pinned to one CPU running one glommio executor. Shards
//! share nothing behind locks; they talk over a mesh of bounded lock-free queues, one
//! per (from, to) pair, with eventfd wake-ups, so an idle runtime sleeps at 0% CPU.
//! The model is Seastar's `sharded<T>`: a tiny API — `send_to`, `broadcast`, `ask`,
//! `map_reduce` — over per-core services.
//!
//! ```
//! use shards::Builder;
//!
//! // Every shard answers "how many items do you hold?"; shard 0 sums the answers.
//! let totals = Builder::new()
//!     .shards(2)
//!     .build::<u64>()
//!     .unwrap()
//!     .run(|shard| async move {
//!         let mine = 10 * (shard.id() as u64 + 1);
//!         shard.mesh().serve(move |incoming| {
//!             if let Some(reply) = incoming.reply {
//!                 reply.send(mine);
//!             }
//!         });
//!         let total = if shard.id() == 0 {
//!             let sum = shard.mesh().map_reduce(0, 0, |acc, n| acc + n).await;
//!             shard.stop_handle().stop();
//!             sum
//!         } else {
//!             0
//!         };
//!         shard.stopped().await;
//!         total
//!     })
//!     .unwrap();
//! assert_eq!(totals[0], 30);
//! ```
//!
//! Back-pressure policy: `send_to`, `broadcast` and `ask` wait while the target queue
//! is full (the sender slows down to the receiver's pace); `try_send_to` never waits
//! and returns [`SendError::Full`] so the caller can drop, count or disconnect. A
//! [`Reply`] never waits either: one that finds its queue full is sent later, in order,
//! by a local task.
//!
//! Messages that reach a shard before it calls [`Mesh::serve`] are kept (without bound)
//! and handled, in arrival order, when it does.
//!
//! Shutdown: [`StopHandle::stop`] resolves [`Shard::stopped`] on every shard; each
//! shard's future decides when to return, and [`Shard::stop_cause`] says why it was
//! asked to ([`StopCause`]: a request, or which signal). Signals: SIGINT/SIGTERM stop
//! the runtime with [`Builder::stop_on_signals`]; [`Builder::on_signal`] gives any
//! other signal (SIGHUP, SIGUSR1, …) to a hook that decides what it means. A shard that panics makes the runtime abort
//! the others (their futures are dropped) and [`Runtime::run`] return
//! [`Error::ShardPanicked`]: the process never keeps running half-dead.

mod cpus;
mod mesh;
mod runtime;
mod stop;

pub use cpus::allowed_cpus;
pub use mesh::{Incoming, Mesh, NoReply, Reply, SendError};
pub use runtime::{Builder, Error, Runtime, Shard, StopSignal};
pub use stop::{StopCause, StopHandle};
