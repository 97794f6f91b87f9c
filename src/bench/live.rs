//! Live figures of a run, for the progress line: the phase, and per client executor
//! a cache-line-sized slot of counters that only that executor writes (no contention
//! on the receive path); readers add the slots up.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use super::clock;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Setup = 0,
    Running = 1,
    Draining = 2,
    Closing = 3,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setting up",
            Phase::Running => "running",
            Phase::Draining => "draining",
            Phase::Closing => "closing",
        }
    }
}

/// One executor's counters.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Slot {
    /// Connections set up (established and, where the scenario subscribes, subscribed).
    pub ready: AtomicU64,
    pub failed: AtomicU64,
    /// What the scenario sends: events, whispers, joins, cycles.
    pub sent: AtomicU64,
    /// What the scenario receives: deliveries, member events, ...
    pub received: AtomicU64,
}

impl Slot {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// Totals read from all slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub ready: u64,
    pub failed: u64,
    pub sent: u64,
    pub received: u64,
}

/// The shared live state of a run.
#[derive(Debug)]
pub struct Live {
    phase: AtomicU8,
    phase_since_ns: AtomicU64,
    /// Connections the setup phase opens in total.
    pub setup_target: AtomicU64,
    /// How the progress line names `sent` and `received`.
    pub sent_label: &'static str,
    pub received_label: &'static str,
    slots: Vec<Slot>,
}

impl Live {
    pub fn new(executors: usize, sent_label: &'static str, received_label: &'static str) -> Live {
        Live {
            phase: AtomicU8::new(Phase::Setup as u8),
            phase_since_ns: AtomicU64::new(clock::now_ns()),
            setup_target: AtomicU64::new(0),
            sent_label,
            received_label,
            slots: (0..executors).map(|_| Slot::default()).collect(),
        }
    }

    pub fn slot(&self, executor: usize) -> &Slot {
        &self.slots[executor]
    }

    /// Move to `phase` (only forward; the first executor to get there sets the time).
    pub fn enter(&self, phase: Phase) {
        let now = clock::now_ns();
        if self.phase.fetch_max(phase as u8, Relaxed) < phase as u8 {
            self.phase_since_ns.store(now, Relaxed);
        }
    }

    pub fn phase(&self) -> (Phase, u64) {
        let phase = match self.phase.load(Relaxed) {
            0 => Phase::Setup,
            1 => Phase::Running,
            2 => Phase::Draining,
            _ => Phase::Closing,
        };
        (phase, self.phase_since_ns.load(Relaxed))
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.slots {
            t.ready += s.ready.load(Relaxed);
            t.failed += s.failed.load(Relaxed);
            t.sent += s.sent.load(Relaxed);
            t.received += s.received.load(Relaxed);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_add_up_and_phases_only_advance() {
        let live = Live::new(2, "events", "deliveries");
        Slot::add(&live.slot(0).received, 5);
        Slot::add(&live.slot(1).received, 7);
        Slot::add(&live.slot(1).ready, 1);
        assert_eq!(live.totals().received, 12);
        assert_eq!(live.totals().ready, 1);
        live.enter(Phase::Draining);
        live.enter(Phase::Running);
        assert_eq!(live.phase().0, Phase::Draining);
    }
}
