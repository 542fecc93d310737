//! Columnar batches of run-queue events: the drain thread appends ring-buffer
//! records here, one `Vec` per field, and ships full (or old enough) batches
//! over a bounded channel. Python receives each column as a numpy array that
//! takes over the `Vec`'s buffer without a copy.

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

impl EventColumns {
    fn with_capacity(capacity: usize) -> Self {
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

    pub fn len(&self) -> usize {
        self.ts_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts_ns.is_empty()
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
    /// Ring-buffer records too short to be a `runq_event` (never expected).
    pub malformed_records: AtomicU64,
    /// Failed ring-buffer polls (e.g. interrupted); records stay in the ring.
    pub ring_errors: AtomicU64,
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
pub struct Batcher {
    policy: BatchPolicy,
    columns: EventColumns,
    first_event_at: Option<Instant>,
    sender: Sender<EventColumns>,
    stats: Arc<DrainStats>,
}

impl Batcher {
    pub fn new(policy: BatchPolicy, sender: Sender<EventColumns>, stats: Arc<DrainStats>) -> Self {
        Self {
            policy,
            columns: EventColumns::with_capacity(policy.max_events),
            first_event_at: None,
            sender,
            stats,
        }
    }

    /// Appends one raw record. Called from libbpf's C callback: never panics.
    pub fn push_record(&mut self, record: &[u8]) {
        let Some(event) = decode_pod::<runq_event>(record) else {
            self.stats.malformed_records.fetch_add(1, Relaxed);
            return;
        };
        if self.columns.is_empty() {
            self.first_event_at = Some(Instant::now());
        }
        self.columns.push(&event);
        if self.columns.len() >= self.policy.max_events {
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
        if self.columns.is_empty() {
            return;
        }
        let batch = std::mem::replace(
            &mut self.columns,
            EventColumns::with_capacity(self.policy.max_events),
        );
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
        let mut batcher = Batcher::new(policy(3), tx, stats.clone());
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
        let mut batcher = Batcher::new(policy(2), tx, stats.clone());
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
        let mut batcher = Batcher::new(policy(1), tx, stats.clone());
        batcher.push_record(&[1, 2, 3]);
        assert_eq!(stats.malformed_records.load(Relaxed), 1);
        assert!(rx.try_recv().is_err());
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
