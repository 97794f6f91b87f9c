//! Process limits: every connection is a file descriptor, so the open-files limit is the
//! connection ceiling. Raise the soft limit to the hard one at start and say what that
//! allows.

/// File descriptors the process needs besides connections: per shard its io_uring
/// rings, eventfds, listener and stop socket; plus stdio, the signal thread and slack.
pub fn reserved_fds(shards: usize) -> u64 {
    32 + 12 * shards as u64
}

/// Raise RLIMIT_NOFILE's soft limit to its hard limit; returns the resulting
/// (soft, hard) pair.
pub fn raise_nofile() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0);
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    (lim.rlim_cur, lim.rlim_max)
}

/// The number of concurrent connections the open-files limit leaves room for.
pub fn connection_ceiling(soft_limit: u64, shards: usize) -> u64 {
    soft_limit.saturating_sub(reserved_fds(shards))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers() {
        let (soft, hard) = raise_nofile();
        assert!(soft > 0 && soft <= hard);
        assert_eq!(raise_nofile().0, soft);
    }

    #[test]
    fn ceiling_leaves_room_for_the_runtime() {
        assert_eq!(connection_ceiling(20_000, 2), 20_000 - 56);
        assert_eq!(connection_ceiling(10, 2), 0);
    }
}
