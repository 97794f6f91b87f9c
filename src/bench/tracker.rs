//! Per-receiver bookkeeping of which events arrived: one bitset of sequence numbers
//! per sender, so duplicates are seen as they come and losses are counted exactly at
//! the end (reordering is neither).

/// Sequence numbers past this are taken as garbled, not as a reason to allocate.
const MAX_SEQ: u64 = 1 << 30;

/// A growable bitset of sequence numbers.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    words: Vec<u64>,
    count: u64,
}

impl Seen {
    /// Mark `seq`; false when it was already marked.
    pub fn insert(&mut self, seq: u64) -> bool {
        let word = (seq / 64) as usize;
        if word >= self.words.len() {
            // Grow by doubling so a steady stream reallocates rarely.
            let len = (word + 1).max(self.words.len() * 2).max(4);
            self.words.resize(len, 0);
        }
        let bit = 1u64 << (seq % 64);
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        self.count += u64::from(fresh);
        fresh
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.words
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1u64 << (seq % 64)) != 0)
    }

    /// Distinct sequence numbers marked.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Of the sequence numbers `0..sent` minus `failed`, how many are not marked.
    pub fn missing(&self, sent: u64, failed: &[u64]) -> u64 {
        let full_words = (sent / 64) as usize;
        let mut have: u64 = self
            .words
            .iter()
            .take(full_words)
            .map(|w| u64::from(w.count_ones()))
            .sum();
        if sent % 64 != 0 {
            if let Some(w) = self.words.get(full_words) {
                have += u64::from((w & ((1u64 << (sent % 64)) - 1)).count_ones());
            }
        }
        let failed_seen = failed
            .iter()
            .filter(|&&s| s < sent && self.contains(s))
            .count() as u64;
        let expected = sent - failed.iter().filter(|&&s| s < sent).count() as u64;
        expected.saturating_sub(have - failed_seen)
    }
}

/// What one receiver got, by sender.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    senders: Vec<Seen>,
    pub duplicates: u64,
    /// Markers that named an unknown sender or an impossible sequence number.
    pub garbled: u64,
}

/// What [`Tracker::record`] made of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Fresh,
    Duplicate,
    Garbled,
}

impl Tracker {
    pub fn new(senders: usize) -> Tracker {
        Tracker {
            senders: vec![Seen::default(); senders],
            duplicates: 0,
            garbled: 0,
        }
    }

    pub fn record(&mut self, sender: usize, seq: u64) -> Outcome {
        match self.senders.get_mut(sender) {
            Some(seen) if seq < MAX_SEQ => {
                if seen.insert(seq) {
                    Outcome::Fresh
                } else {
                    self.duplicates += 1;
                    Outcome::Duplicate
                }
            }
            _ => {
                self.garbled += 1;
                Outcome::Garbled
            }
        }
    }

    /// Distinct deliveries from every sender.
    pub fn distinct(&self) -> u64 {
        self.senders.iter().map(Seen::count).sum()
    }

    pub fn sender(&self, sender: usize) -> Option<&Seen> {
        self.senders.get(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_losses() {
        let mut t = Tracker::new(2);
        for seq in [0, 1, 2, 4, 70, 2] {
            t.record(0, seq);
        }
        assert_eq!(t.record(1, 5), Outcome::Fresh);
        assert_eq!(t.record(1, 5), Outcome::Duplicate);
        assert_eq!(t.record(2, 0), Outcome::Garbled);
        assert_eq!(t.record(0, MAX_SEQ), Outcome::Garbled);
        assert_eq!(t.duplicates, 2);
        assert_eq!(t.garbled, 2);
        assert_eq!(t.distinct(), 6);
        let seen = t.sender(0).unwrap();
        // Sent 0..71: 3 and 5..=69 missing.
        assert_eq!(seen.missing(71, &[]), 1 + 65);
        // Sent 0..5 where 3 failed to publish: nothing missing.
        assert_eq!(seen.missing(5, &[3]), 0);
        // A failed publish that arrived anyway does not hide a real loss (3).
        assert_eq!(seen.missing(5, &[2]), 1);
        assert_eq!(seen.missing(64, &[]), 60);
        assert_eq!(Seen::default().missing(10, &[]), 10);
    }
}
