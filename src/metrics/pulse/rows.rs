//! The rows the Pulse writer owes the database, in Pulse's own aggregate layout.
//!
//! Pulse (`Storage\DatabaseStorage`) pre-aggregates every entry into four periods —
//! 60, 360, 1440 and 10080, the width of a dashboard graph in **minutes** (1 h, 6 h,
//! 24 h, 7 d) — and buckets it by `floor(timestamp / period) * period` with the
//! timestamp in **seconds**: a graph of `period` minutes has 60 points, each
//! `period` seconds wide. Counts waiting for a database that is down keep their
//! original buckets, so a late write still lands where the messages happened.

use std::collections::BTreeMap;

/// Pulse's aggregate periods, in minutes (= the bucket width in seconds).
pub const PERIODS: [u64; 4] = [60, 360, 1440, 10080];

/// Which Reverb Pulse record a count belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Sent,
    Received,
}

impl Kind {
    /// The `type` column, as Reverb's `ReverbMessages` recorder writes it.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Sent => "reverb_message:sent",
            Kind::Received => "reverb_message:received",
        }
    }
}

/// One `pulse_aggregates` row, keyed as its unique index is (less `aggregate`, which
/// is always `count`, and with the app index standing for the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub bucket: u64,
    pub period: u64,
    pub kind: Kind,
    pub app: usize,
}

/// Counts not yet written.
#[derive(Debug, Default)]
pub struct Pending {
    rows: BTreeMap<RowKey, u64>,
}

impl Pending {
    /// Add `n` messages of `kind` for app `app`, counted at unix time `at` (seconds).
    pub fn add(&mut self, at: u64, app: usize, kind: Kind, n: u64) {
        if n == 0 {
            return;
        }
        for period in PERIODS {
            let key = RowKey {
                bucket: at / period * period,
                period,
                kind,
                app,
            };
            *self.rows.entry(key).or_default() += n;
        }
    }

    /// Forget rows Pulse would no longer show (nor keep): Pulse skips entries older
    /// than the period's window and trims buckets that left it, so a count that waited
    /// that long for the database is dropped instead of growing the backlog forever.
    pub fn trim(&mut self, now: u64) {
        self.rows
            .retain(|key, _| key.bucket + key.period + key.period * 60 > now);
    }

    pub fn rows(&self) -> impl Iterator<Item = (&RowKey, u64)> {
        self.rows.iter().map(|(k, v)| (k, *v))
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn clear(&mut self) {
        self.rows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_period_with_pulse_buckets() {
        let mut p = Pending::default();
        let at = 1_700_000_123;
        p.add(at, 0, Kind::Sent, 5);
        let mut rows: Vec<_> = p.rows().map(|(k, v)| (k.period, k.bucket, v)).collect();
        rows.sort();
        assert_eq!(
            rows,
            vec![
                (60, 1_700_000_100, 5),
                (360, 1_699_999_920, 5),
                (1440, 1_699_999_200, 5),
                (10080, 1_699_992_000, 5),
            ]
        );
        for (period, bucket, _) in rows {
            assert_eq!(bucket % period, 0);
            assert!(bucket <= at && at < bucket + period);
        }
    }

    #[test]
    fn counts_add_up_per_bucket_and_kind() {
        let mut p = Pending::default();
        p.add(120, 1, Kind::Received, 2);
        p.add(179, 1, Kind::Received, 3);
        p.add(180, 1, Kind::Received, 4);
        p.add(180, 1, Kind::Sent, 0);
        let sixty: Vec<_> = p
            .rows()
            .filter(|(k, _)| k.period == 60)
            .map(|(k, v)| (k.bucket, v))
            .collect();
        assert_eq!(sixty, vec![(120, 5), (180, 4)]);
        assert!(p.rows().all(|(k, _)| k.kind == Kind::Received));
    }

    #[test]
    fn rows_out_of_pulses_window_are_trimmed() {
        let mut p = Pending::default();
        p.add(0, 0, Kind::Sent, 1);
        // One hour and a bit later the 1-hour graph no longer shows bucket 0; the
        // longer periods still do.
        p.trim(60 + 3600);
        let mut periods: Vec<_> = p.rows().map(|(k, _)| k.period).collect();
        periods.sort();
        assert_eq!(periods, vec![360, 1440, 10080]);
        p.trim(10_080 * 61);
        assert!(p.is_empty());
    }
}
