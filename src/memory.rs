//! Giving memory back to the OS after a burst.
//!
//! mimalloc returns freed pages to the OS only when later allocator calls on the same
//! thread get round to it. A shard that goes quiet right after a burst (a reconnect
//! storm, a large fan-out) would keep those pages resident for as long as it stays
//! quiet, so RSS would say more about the past peak than about what the connections
//! hold now. Each shard asks its heap to collect once a second, from its heartbeat.

/// Return this thread's freed, expired pages to the OS (a cheap, non-forced collect:
/// it touches only this shard's own heap).
pub fn give_back_freed() {
    // SAFETY: `mi_collect` has no preconditions; on a thread whose allocations do not
    // go through mimalloc (tests built without the global allocator) it finds an
    // empty heap.
    unsafe { libmimalloc_sys::mi_collect(false) }
}
