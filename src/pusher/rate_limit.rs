//! Per-connection message rate limit (websocket.md §13): a fixed window that starts at
//! the first counted message and lasts `decay_seconds`.

use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct RateWindow {
    started: Option<Instant>,
    count: u32,
}

impl RateWindow {
    /// Count one message at `now`; false when it is over the limit (and then it is not
    /// counted).
    pub fn admit(&mut self, now: Instant, max_attempts: u32, decay: Duration) -> bool {
        match self.started {
            Some(start) if now.duration_since(start) < decay => {}
            _ => {
                self.started = Some(now);
                self.count = 0;
            }
        }
        if self.count >= max_attempts {
            return false;
        }
        self.count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_resets_after_decay() {
        let mut w = RateWindow::default();
        let t0 = Instant::now();
        let decay = Duration::from_secs(10);
        assert!(w.admit(t0, 2, decay));
        assert!(w.admit(t0 + Duration::from_secs(1), 2, decay));
        assert!(!w.admit(t0 + Duration::from_secs(2), 2, decay));
        assert!(!w.admit(t0 + Duration::from_secs(9), 2, decay));
        assert!(w.admit(t0 + Duration::from_secs(10), 2, decay));
    }
}
