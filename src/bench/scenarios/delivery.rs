//! The receive side of `fanout` and `whisper`: one executor's delivery counters, the
//! reader each receiving connection runs (find the bench marker, record it in that
//! receiver's tracker, time it; nothing else is parsed), and the report sections built
//! from every executor's counts.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::{seconds, spawn_reader};
use crate::bench::client::Conn;
use crate::bench::clock;
use crate::bench::fail::Failures;
use crate::bench::payload;
use crate::bench::report::{histogram, latency_section, Report, Section};
use crate::bench::runner::Env;
use crate::bench::tracker::{Outcome, Tracker};

/// One executor's receive-side counters, shared by its receivers' readers.
pub struct Deliveries {
    deliveries: Cell<u64>,
    /// First deliveries of an event to a receiver (what the drain waits for).
    pub fresh: Cell<u64>,
    duplicates: Cell<u64>,
    garbled: Cell<u64>,
    /// Events a receiver got back although it sent them itself.
    echoed: Cell<u64>,
    other: Cell<u64>,
    last_ns: Cell<u64>,
    latency: RefCell<Histogram<u64>>,
    /// Readers still running.
    pub open_readers: Cell<usize>,
    /// Set before closing on purpose: readers ending then are not failures.
    closing: Cell<bool>,
    failures: RefCell<Failures>,
}

/// What one executor received, sendable to the main thread.
pub struct Received {
    pub deliveries: u64,
    pub duplicates: u64,
    pub garbled: u64,
    pub echoed: u64,
    pub other: u64,
    pub last_ns: u64,
    pub latency: Histogram<u64>,
    /// Receivers the server dropped during the run, by cause.
    pub failures: Failures,
}

impl Deliveries {
    pub fn new() -> Rc<Deliveries> {
        Rc::new(Deliveries {
            deliveries: Cell::new(0),
            fresh: Cell::new(0),
            duplicates: Cell::new(0),
            garbled: Cell::new(0),
            echoed: Cell::new(0),
            other: Cell::new(0),
            last_ns: Cell::new(0),
            latency: RefCell::new(histogram()),
            open_readers: Cell::new(0),
            closing: Cell::new(false),
            failures: RefCell::new(Failures::default()),
        })
    }

    /// Read `conn` until it ends, recording every bench event in `tracker`. An event
    /// whose source is `own_source` came back to its own sender (counted apart).
    pub fn start_reader(
        self: &Rc<Self>,
        env: &Rc<Env>,
        conn: &Rc<Conn>,
        tracker: &Rc<RefCell<Tracker>>,
        own_source: Option<u32>,
    ) -> glommio::Task<()> {
        self.open_readers.set(self.open_readers.get() + 1);
        let (s, t, end) = (self.clone(), tracker.clone(), self.clone());
        spawn_reader(
            env,
            conn.clone(),
            move |text, now| s.on_message(text, now, &t, own_source),
            move |fail| {
                end.open_readers.set(end.open_readers.get() - 1);
                if !end.closing.get() {
                    end.failures.borrow_mut().add(&fail);
                }
            },
        )
    }

    #[inline]
    fn on_message(&self, text: &[u8], now: u64, tracker: &RefCell<Tracker>, own: Option<u32>) {
        let Some(m) = payload::find_marker(text) else {
            self.other.set(self.other.get() + 1);
            return;
        };
        self.deliveries.set(self.deliveries.get() + 1);
        self.last_ns.set(now);
        if own == Some(m.source) {
            self.echoed.set(self.echoed.get() + 1);
            return;
        }
        let counter = match tracker.borrow_mut().record(m.source as usize, m.seq) {
            Outcome::Fresh => &self.fresh,
            Outcome::Duplicate => &self.duplicates,
            Outcome::Garbled => &self.garbled,
        };
        counter.set(counter.get() + 1);
        self.latency
            .borrow_mut()
            .saturating_record(clock::micros_between(m.sent_ns, now).max(1));
    }

    /// Copy the delivery count into the live slot ten times a second (the receive
    /// path itself touches no atomics).
    pub fn spawn_live_feed(self: &Rc<Self>, env: &Rc<Env>) -> glommio::Task<()> {
        let (env, stats) = (env.clone(), self.clone());
        glommio::spawn_local(async move {
            loop {
                env.slot()
                    .received
                    .store(stats.deliveries.get(), Ordering::Relaxed);
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// From now on readers that end are not failures (we are closing).
    pub fn closing(&self) {
        self.closing.set(true);
    }

    pub fn finish(&self) -> Received {
        Received {
            deliveries: self.deliveries.get(),
            duplicates: self.duplicates.get(),
            garbled: self.garbled.get(),
            echoed: self.echoed.get(),
            other: self.other.get(),
            last_ns: self.last_ns.get(),
            latency: self.latency.replace(histogram()),
            failures: self.failures.take(),
        }
    }
}

/// Adds the `deliveries` and `latency_us` sections; returns (deliveries, duplicates).
pub fn report_sections<'a>(
    report: &mut Report,
    received: impl Iterator<Item = &'a Received>,
    expected: u64,
    lost: u64,
    run_start_ns: u64,
    failures: &mut Failures,
) -> (u64, u64) {
    let mut latency = histogram();
    let (mut deliveries, mut duplicates, mut garbled, mut echoed, mut other, mut last) =
        (0, 0, 0, 0, 0, 0);
    for r in received {
        deliveries += r.deliveries;
        duplicates += r.duplicates;
        garbled += r.garbled;
        echoed += r.echoed;
        other += r.other;
        last = last.max(r.last_ns);
        let _ = latency.add(&r.latency);
        failures.merge(r.failures.clone());
    }
    let window = seconds(run_start_ns, last.max(run_start_ns));
    let mut d = Section::new("deliveries", "deliveries");
    d.int("expected", "expected", expected)
        .int("deliveries", "delivered", deliveries)
        .int("lost", "lost", lost)
        .int("duplicates", "duplicates", duplicates)
        .int("echoed", "echoed to their sender", echoed)
        .int("garbled", "unreadable bench markers", garbled)
        .int("other_messages", "other messages", other)
        .rate("per_s", "deliveries per second", deliveries, window);
    report.push(d);
    report.push(latency_section(
        "latency_us",
        "end-to-end latency (sent -> frame read)",
        &latency,
    ));
    (deliveries, duplicates)
}
