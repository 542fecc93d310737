//! Batches of ring-buffer records: the drain thread appends records to a
//! batch and ships full (or old enough) batches over a bounded channel.
//! Python receives each column as a numpy array that takes over the `Vec`'s
//! buffer without a copy.
//!
//! Two kinds of batch: the run-queue probe's `EventColumns` (one `Vec` per
//! field of `struct runq_event`) and a plugin's `RawRecords` (fixed-size
//! records back to back, split into columns in Python by their BTF layout).

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use crossbeam_channel::Sender;
use crossbeam_channel::TrySendError;

use crate::pod::decode_pod;
use crate::runq_skel::types::runq_event;

/// One column per field of `struct runq_event`, all the same length.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EventColumns {
    pub ts_ns: Vec<u64>,
    pub cpu: Vec<u32>,
    pub pid: Vec<u32>,
    pub tgid: Vec<u32>,
    pub prev_pid: Vec<u32>,
    pub cgroup_id: Vec<u64>,
    pub prev_cgroup_id: Vec<u64>,
    pub latency_ns: Vec<u64>,
    pub preempted: Vec<bool>,
}

/// A batch the drain thread fills record by record.
pub trait RecordBatch: Send + 'static {
    /// An empty batch of the same kind, with room for `capacity` records.
    fn empty_like(&self, capacity: usize) -> Self;
    fn len(&self) -> usize;
    /// Appends one raw record; false if it is too short to decode.
    fn push_record(&mut self, record: &[u8]) -> bool;
}

impl RecordBatch for EventColumns {
    fn empty_like(&self, capacity: usize) -> Self {
        Self::with_capacity(capacity)
    }

    fn len(&self) -> usize {
        self.ts_ns.len()
    }

    fn push_record(&mut self, record: &[u8]) -> bool {
        match decode_pod::<runq_event>(record) {
            Some(event) => {
                self.push(&event);
                true
            }
            None => false,
        }
    }
}

/// Records of one fixed size, back to back. Longer records (a variable tail
/// after the declared struct) keep their first `record_size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecords {
    pub record_size: usize,
    pub bytes: Vec<u8>,
}

impl RawRecords {
    pub fn new(record_size: usize) -> Self {
        Self {
            record_size,
            bytes: Vec::new(),
        }
    }
}

impl RecordBatch for RawRecords {
    fn empty_like(&self, capacity: usize) -> Self {
        Self {
            record_size: self.record_size,
            bytes: Vec::with_capacity(capacity.saturating_mul(self.record_size)),
        }
    }

    fn len(&self) -> usize {
        self.bytes.len() / self.record_size.max(1)
    }

    fn push_record(&mut self, record: &[u8]) -> bool {
        match record.get(..self.record_size) {
            Some(head) => {
                self.bytes.extend_from_slice(head);
                true
            }
            None => false,
        }
    }
}

impl EventColumns {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            ts_ns: Vec::with_capacity(capacity),
            cpu: Vec::with_capacity(capacity),
            pid: Vec::with_capacity(capacity),
            tgid: Vec::with_capacity(capacity),
            prev_pid: Vec::with_capacity(capacity),
            cgroup_id: Vec::with_capacity(capacity),
            prev_cgroup_id: Vec::with_capacity(capacity),
            latency_ns: Vec::with_capacity(capacity),
            preempted: Vec::with_capacity(capacity),
        }
    }

    pub fn push(&mut self, event: &runq_event) {
        self.ts_ns.push(event.ts_ns);
        self.cpu.push(event.cpu);
        self.pid.push(event.pid);
        self.tgid.push(event.tgid);
        self.prev_pid.push(event.prev_pid);
        self.cgroup_id.push(event.cgroup_id);
        self.prev_cgroup_id.push(event.prev_cgroup_id);
        self.latency_ns.push(event.latency_ns);
        self.preempted.push(event.preempted != 0);
    }
}

/// What happened to records in user space, shared by the drain thread (which
/// writes) and the probe (which reads for `stats()`).
#[derive(Debug, Default)]
pub struct DrainStats {
    /// Batches handed to the channel, and the events in them.
    pub batches_sent: AtomicU64,
    pub events_sent: AtomicU64,
    /// Batches dropped because Python was not keeping up (channel full).
    pub dropped_batches: AtomicU64,
    pub dropped_batch_events: AtomicU64,
    /// Ring-buffer records too short for their record type.
    pub malformed_records: AtomicU64,
    /// Failed ring-buffer polls (e.g. interrupted); records stay in the ring.
    pub ring_errors: AtomicU64,
    /// Records of a ring whose record type is unknown: consumed, not decoded.
    pub undecoded_records: AtomicU64,
}

/// When a batch is shipped.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Ship once a batch holds this many events...
    pub max_events: usize,
    /// ...or once its first event is this old.
    pub max_age: Duration,
}

/// Builds batches from ring-buffer records and ships them without ever
/// blocking: a full channel drops the batch and counts it.
pub struct Batcher<B: RecordBatch> {
    policy: BatchPolicy,
    batch: B,
    first_event_at: Option<Instant>,
    sender: Sender<B>,
    stats: Arc<DrainStats>,
}

impl<B: RecordBatch> Batcher<B> {
    /// `empty` is the first (empty) batch; later ones are made like it.
    pub fn new(policy: BatchPolicy, empty: &B, sender: Sender<B>, stats: Arc<DrainStats>) -> Self {
        Self {
            policy,
            batch: empty.empty_like(policy.max_events),
            first_event_at: None,
            sender,
            stats,
        }
    }

    /// Appends one raw record. Called from libbpf's C callback: never panics.
    pub fn push_record(&mut self, record: &[u8]) {
        let was_empty = self.batch.len() == 0;
        if !self.batch.push_record(record) {
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

    /// Ships the batch if its oldest event has waited long enough.
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
        if self.batch.len() == 0 {
            return;
        }
        let fresh = self.batch.empty_like(self.policy.max_events);
        let batch = std::mem::replace(&mut self.batch, fresh);
        self.first_event_at = None;
        let events = batch.len() as u64;
        match self.sender.try_send(batch) {
            Ok(()) => {
                self.stats.batches_sent.fetch_add(1, Relaxed);
                self.stats.events_sent.fetch_add(events, Relaxed);
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

    fn record(cgroup_id: u64, latency_ns: u64) -> Vec<u8> {
        let event = runq_event {
            cgroup_id,
            latency_ns,
            pid: 7,
            preempted: 1,
            ..Default::default()
        };
        // SAFETY: runq_event is plain old data; viewing it as bytes is sound.
        unsafe {
            std::slice::from_raw_parts((&raw const event).cast::<u8>(), size_of::<runq_event>())
        }
        .to_vec()
    }

    fn policy(max_events: usize) -> BatchPolicy {
        BatchPolicy {
            max_events,
            max_age: Duration::from_secs(3600),
        }
    }

    #[test]
    fn ships_a_batch_when_it_is_full() {
        let (tx, rx) = bounded(4);
        let stats = Arc::new(DrainStats::default());
        let mut batcher = Batcher::new(policy(3), &EventColumns::default(), tx, stats.clone());
        for i in 0..7 {
            batcher.push_record(&record(i, i * 10));
        }
        let first = rx.try_recv().expect("a full batch was shipped");
        assert_eq!(first.cgroup_id, vec![0, 1, 2]);
        assert_eq!(first.latency_ns, vec![0, 10, 20]);
        assert_eq!(first.pid, vec![7; 3]);
        assert_eq!(first.preempted, vec![true; 3]);
        assert_eq!(rx.try_recv().expect("second batch").len(), 3);
        assert!(rx.try_recv().is_err(), "the 7th event waits for more");
        batcher.ship();
        assert_eq!(rx.try_recv().expect("remainder").cgroup_id, vec![6]);
        assert_eq!(stats.events_sent.load(Relaxed), 7);
        assert_eq!(stats.batches_sent.load(Relaxed), 3);
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_blocking() {
        let (tx, rx) = bounded(1);
        let stats = Arc::new(DrainStats::default());
        let mut batcher = Batcher::new(policy(2), &EventColumns::default(), tx, stats.clone());
        for i in 0..6 {
            batcher.push_record(&record(i, 1));
        }
        assert_eq!(rx.len(), 1);
        assert_eq!(stats.dropped_batches.load(Relaxed), 2);
        assert_eq!(stats.dropped_batch_events.load(Relaxed), 4);
        assert_eq!(stats.events_sent.load(Relaxed), 2);
    }

    #[test]
    fn short_records_are_counted_not_decoded() {
        let (tx, rx) = bounded(1);
        let stats = Arc::new(DrainStats::default());
        let mut batcher = Batcher::new(policy(1), &EventColumns::default(), tx, stats.clone());
        batcher.push_record(&[1, 2, 3]);
        assert_eq!(stats.malformed_records.load(Relaxed), 1);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn raw_records_keep_their_declared_size_and_count_short_ones() {
        let (tx, rx) = bounded(2);
        let stats = Arc::new(DrainStats::default());
        let mut batcher = Batcher::new(policy(2), &RawRecords::new(4), tx, stats.clone());
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
        let mut batcher = Batcher::new(
            BatchPolicy {
                max_events: 100,
                max_age: Duration::ZERO,
            },
            &EventColumns::default(),
            tx,
            stats,
        );
        batcher.ship_if_due();
        assert!(rx.try_recv().is_err(), "nothing to ship");
        batcher.push_record(&record(1, 1));
        batcher.ship_if_due();
        assert_eq!(rx.try_recv().expect("due batch").len(), 1);
    }
}
