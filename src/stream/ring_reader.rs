//! Reading BPF ring buffers into batches: one reader polls all the rings of a
//! loaded object, and each stream's records (one ring's, or those of one
//! ring per CPU) go to its own batcher (and so its own channel to Python).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use libbpf_rs::MapCore;
use libbpf_rs::RingBuffer;
use libbpf_rs::RingBufferBuilder;

use crate::errors::HostError;
use crate::stream::batch::Batcher;
use crate::stream::batch::DrainStats;

/// Where one ring's records go.
pub trait RecordSink {
    /// Takes one record. Called from libbpf's C callback: must not panic.
    fn push_record(&mut self, record: &[u8]);
    /// Ships the pending batch if it is old enough.
    fn ship_if_due(&mut self);
    /// Ships whatever is pending.
    fn ship(&mut self);
}

impl RecordSink for Batcher {
    fn push_record(&mut self, record: &[u8]) {
        Batcher::push_record(self, record);
    }

    fn ship_if_due(&mut self) {
        Batcher::ship_if_due(self);
    }

    fn ship(&mut self) {
        Batcher::ship(self);
    }
}

/// Records nobody can decode (a plugin ring whose record type is unknown):
/// consumed so the ring keeps flowing, and counted.
pub struct CountingSink(pub Arc<DrainStats>);

impl RecordSink for CountingSink {
    fn push_record(&mut self, _record: &[u8]) {
        self.0.undecoded_records.fetch_add(1, Relaxed);
    }

    fn ship_if_due(&mut self) {}

    fn ship(&mut self) {}
}

type SharedSink = Rc<RefCell<Box<dyn RecordSink>>>;

/// One stream: its ring buffers (one, or one per CPU) and where their
/// records go.
pub struct Stream<'a> {
    pub rings: Vec<&'a dyn MapCore>,
    pub sink: Box<dyn RecordSink>,
}

/// The reading end of one or more ring buffers.
pub struct RingReader {
    ring: RingBuffer<'static>,
    sinks: Vec<SharedSink>,
    /// Where failed polls are counted.
    errors: Arc<DrainStats>,
    poll: Duration,
}

impl RingReader {
    /// Reads each stream's maps into its sink; waits at most `poll` per drain.
    pub fn open(
        streams: Vec<Stream<'_>>,
        errors: Arc<DrainStats>,
        poll: Duration,
    ) -> Result<Self, HostError> {
        let mut builder = RingBufferBuilder::new();
        let mut sinks = Vec::with_capacity(streams.len());
        for Stream { rings, sink } in streams {
            let sink: SharedSink = Rc::new(RefCell::new(sink));
            for map in rings {
                let callback_sink = Rc::clone(&sink);
                builder
                    .add(map, move |record: &[u8]| {
                        // Called from C, so it must not panic: sinks never do,
                        // and none is borrowed while libbpf runs callbacks.
                        if let Ok(mut sink) = callback_sink.try_borrow_mut() {
                            sink.push_record(record);
                        }
                        0
                    })
                    .map_err(|err| {
                        HostError::RingBuffer(format!("reading a ring buffer: {err}"))
                    })?;
            }
            sinks.push(sink);
        }
        let ring = builder
            .build()
            .map_err(|err| HostError::RingBuffer(format!("reading the ring buffers: {err}")))?;
        Ok(Self {
            ring,
            sinks,
            errors,
            poll,
        })
    }

    /// Waits for records (at most one poll interval) and takes all there are.
    pub fn drain_once(&self) {
        if self.ring.poll(self.poll).is_err() || self.ring.consume().is_err() {
            self.errors.ring_errors.fetch_add(1, Relaxed);
        }
        for sink in &self.sinks {
            sink.borrow_mut().ship_if_due();
        }
    }

    /// Takes the records already in the rings, without waiting or shipping:
    /// what programs run before attach wrote goes first into the batches.
    pub fn take_ready(&self) {
        if self.ring.consume().is_err() {
            self.errors.ring_errors.fetch_add(1, Relaxed);
        }
    }

    /// Takes the last records and ships the partial batches (after detaching).
    pub fn drain_rest(self) {
        if self.ring.consume().is_err() {
            self.errors.ring_errors.fetch_add(1, Relaxed);
        }
        for sink in &self.sinks {
            sink.borrow_mut().ship();
        }
    }
}
