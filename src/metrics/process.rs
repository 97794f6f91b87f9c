//! Process-wide gauges and counters that change rarely (not per message): the Redis
//! scaling link's state and its dropped publishes, kept in atomics that the scaling
//! code sets from whatever thread it runs on; plus the open-files figures read from the
//! kernel at scrape time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static REDIS_LINK_UP: AtomicBool = AtomicBool::new(false);
static REDIS_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Record whether the Redis pub/sub link is connected and subscribed right now.
pub fn redis_link(up: bool) {
    REDIS_LINK_UP.store(up, Ordering::Relaxed);
}

/// Count `n` publishes that could not be sent to Redis and were dropped.
pub fn redis_dropped(n: u64) {
    REDIS_DROPPED.fetch_add(n, Ordering::Relaxed);
}

/// The Redis figures: (link up, dropped publishes so far).
pub fn redis() -> (bool, u64) {
    (
        REDIS_LINK_UP.load(Ordering::Relaxed),
        REDIS_DROPPED.load(Ordering::Relaxed),
    )
}

/// File descriptors open in this process right now (entries of `/proc/self/fd`, less
/// the one the listing itself holds open); `None` where that cannot be read.
pub fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some((entries.count() as u64).saturating_sub(1))
}

/// The open-files soft limit: the most descriptors (so connections) the process may
/// hold.
pub fn max_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    Some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fds_are_counted_and_below_the_limit() {
        let before = open_fds().unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(open_fds().unwrap() > before.saturating_sub(1));
        drop(file);
        assert!(max_fds().unwrap() >= open_fds().unwrap());
    }

    #[test]
    fn redis_figures() {
        redis_link(true);
        let (_, dropped) = redis();
        redis_dropped(3);
        let (up, after) = redis();
        assert!(up);
        assert!(after >= dropped + 3);
        redis_link(false);
        assert!(!redis().0);
    }
}
