//! One monotonic time base for the whole process, so a timestamp written into a message
//! by one client executor can be compared with the moment another one reads it.
//! Nanoseconds since the first use, from `Instant` (CLOCK_MONOTONIC).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static BASE: OnceLock<Instant> = OnceLock::new();

fn base() -> Instant {
    *BASE.get_or_init(Instant::now)
}

/// Nanoseconds since the process's time base.
pub fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

/// The `Instant` a `now_ns()` value stands for.
pub fn instant_of(ns: u64) -> Instant {
    base() + Duration::from_nanos(ns)
}

/// Microseconds from `from_ns` to `to_ns` (0 when the clock readings cross).
pub fn micros_between(from_ns: u64, to_ns: u64) -> u64 {
    to_ns.saturating_sub(from_ns) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_convertible() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        assert_eq!(micros_between(b, a), 0);
        assert_eq!(micros_between(1_000, 5_000), 4);
        assert!(instant_of(a) <= Instant::now());
    }
}
