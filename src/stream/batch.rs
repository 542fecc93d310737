//! Batches of ring-buffer records: the drain thread appends records to a
//! batch and ships full (or old enough) batches over a bounded channel.
//! A batch is the records back to back; Python splits it into one numpy
//! column per field of the record's BTF type, which takes over the buffer.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use crossbeam_channel::Sender;
use crossbeam_channel::TrySendError;

/// Records of one fixed size, back to back. Longer records (a variable tail
/// after the declared struct) keep their first `record_size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecords {
    pub record_size: usize,
    pub bytes: Vec<u8>,
}

impl RawRecords {
    /// An empty batch with room for `capacity` records.
    pub fn with_capacity(record_size: usize, capacity: usize) -> Self {
        Self {
            record_size,
            bytes: Vec::with_capacity(capacity.saturating_mul(record_size)),
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len() / self.record_size.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends one record; false if it is shorter than `record_size`.
    fn push(&mut self, record: &[u8]) -> bool {
        match record.get(..self.record_size) {
            Some(head) => {
                self.bytes.extend_from_slice(head);
                true
            }
            None => false,
        }
    }
}

/// What happened to one ring's records in user space, shared by the drain
/// thread (which writes) and the host (which reads for `stats()`). The names
/// are the ones Python's `stats()` uses.
#[derive(Debug, Default)]
pub struct DrainStats {
    /// Batches handed to the channel, and the records in them.
    pub batches: AtomicU64,
    pub batched_events: AtomicU64,
    /// Batches dropped because Python was not keeping up (channel full).
    pub dropped_batches: AtomicU64,
    pub dropped_batch_events: AtomicU64,
    /// Records too short for their record type.
    pub malformed_records: AtomicU64,
    /// Records of a ring whose record type is unknown: consumed, not decoded.
    pub undecoded_records: AtomicU64,
    /// Failed ring-buffer polls (e.g. interrupted); records stay in the ring.
    pub ring_errors: AtomicU64,
}

/// When a batch is shipped.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Ship once a batch holds this many records...
    pub max_events: usize,
    /// ...or once its first record is this old.
    pub max_age: Duration,
}

/// Builds batches from ring-buffer records and ships them without ever
/// blocking: a full channel drops the batch and counts it.
pub struct Batcher {
    policy: BatchPolicy,
    batch: RawRecords,
    first_event_at: Option<Instant>,
    sender: Sender<RawRecords>,
    stats: Arc<DrainStats>,
}

impl Batcher {
    pub fn new(
        policy: BatchPolicy,
        record_size: usize,
        sender: Sender<RawRecords>,
        stats: Arc<DrainStats>,
    ) -> Self {
        Self {
            policy,
            batch: RawRecords::with_capacity(record_size, policy.max_events),
            first_event_at: None,
            sender,
            stats,
        }
    }

    /// Appends one raw record. Called from libbpf's C callback: never panics.
    pub fn push_record(&mut self, record: &[u8]) {
        let was_empty = self.batch.is_empty();
        if !self.batch.push(record) {
            self.stats.malformed_records.fetch_add(1, Relaxed);
            return;
        }
        if was_empty {
            self.first_event_at = Some(Instant::now());
        }
        if self.batch.len() >= self.policy.max_events {
            self.ship();
        }
    }

    /// Ships the batch if its oldest record has waited long enough.
    pub fn ship_if_due(&mut self) {
        if self
            .first_event_at
            .is_some_and(|at| at.elapsed() >= self.policy.max_age)
        {
            self.ship();
        }
    }

    /// Ships whatever is pending.
    pub fn ship(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let fresh = RawRecords::with_capacity(self.batch.record_size, self.policy.max_events);
        let batch = std::mem::replace(&mut self.batch, fresh);
        self.first_event_at = None;
        let events = batch.len() as u64;
        match self.sender.try_send(batch) {
            Ok(()) => {
                self.stats.batches.fetch_add(1, Relaxed);
                self.stats.batched_events.fetch_add(events, Relaxed);
            }
            // Full: Python is behind. Disconnected: nobody will read it. Either
            // way the batch is gone, and counted.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped_batches.fetch_add(1, Relaxed);
                self.stats.dropped_batch_events.fetch_add(events, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    fn policy(max_events: usize) -> BatchPolicy {
        BatchPolicy {
            max_events,
            max_age: Duration::from_secs(3600),
        }
    }

    fn record(first: u8) -> [u8; 4] {
        [first, 0, 0, 7]
    }

    #[test]
    fn ships_a_batch_when_it_is_full() {
        let (tx, rx) = bounded(4);
        let stats = Arc::new(DrainStats::default());
        let mut batcher = Batcher::new(policy(3), 4, tx, stats.clone());
        for i in 0..7 {
            batcher.push_record(&record(i));
        }
        let first = rx.try_recv().expect("a full batch was shipped");
        assert_eq!(first.bytes, [record(0), record(1), record(2)].concat());
        assert_eq!(rx.try_recv().expect("second batch").len(), 3);
        assert!(rx.try_recv().is_err(), "the 7th record waits for more");
        batcher.ship();
        assert_eq!(rx.try_recv().expect("remainder").bytes, record(6));
        assert_eq!(stats.batched_events.load(Relaxed), 7);
        assert_eq!(stats.batches.load(Relaxed), 3);
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_blocking() {
        let (tx, rx) = bounded(1);
        let stats = Arc::new(DrainStats::default());
        let mut batcher = Batcher::new(policy(2), 4, tx, stats.clone());
        for i in 0..6 {
            batcher.push_record(&record(i));
        }
        assert_eq!(rx.len(), 1);
        assert_eq!(stats.dropped_batches.load(Relaxed), 2);
        assert_eq!(stats.dropped_batch_events.load(Relaxed), 4);
        assert_eq!(stats.batched_events.load(Relaxed), 2);
    }

    #[test]
    fn records_keep_their_declared_size_and_short_ones_are_counted() {
        let (tx, rx) = bounded(2);
        let stats = Arc::new(DrainStats::default());
        let mut batcher = Batcher::new(policy(2), 4, tx, stats.clone());
        batcher.push_record(&[1, 2, 3, 4]);
        batcher.push_record(&[5, 6]);
        batcher.push_record(&[7, 8, 9, 10, 11, 12]);
        let batch = rx.try_recv().expect("two whole records make a batch");
        assert_eq!(batch.bytes, vec![1, 2, 3, 4, 7, 8, 9, 10]);
        assert_eq!(batch.len(), 2);
        assert_eq!(stats.malformed_records.load(Relaxed), 1);
    }

    #[test]
    fn an_old_batch_ships_on_time() {
        let (tx, rx) = bounded(1);
        let stats = Arc::new(DrainStats::default());
        let policy = BatchPolicy {
            max_events: 100,
            max_age: Duration::ZERO,
        };
        let mut batcher = Batcher::new(policy, 4, tx, stats);
        batcher.ship_if_due();
        assert!(rx.try_recv().is_err(), "nothing to ship");
        batcher.push_record(&record(1));
        batcher.ship_if_due();
        assert_eq!(rx.try_recv().expect("due batch").len(), 1);
    }
}
