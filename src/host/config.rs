//! What the host is asked to run: an object (a file, or bytes such as the
//! embedded run-queue probe), the globals to write before load, the programs
//! to load, map sizes, map entries to fill before attach, the perf event of
//! each `perf_event` program, and how to batch each ring buffer's records.

use std::path::PathBuf;
use std::sync::Arc;

use crate::host::perf_events::PerfEventSpec;
use crate::stream::batch::BatchPolicy;

/// Where the BPF object comes from.
#[derive(Debug, Clone)]
pub enum ObjectSource {
    File(PathBuf),
    /// An object in memory; `name` prefixes libbpf's names of its data
    /// sections (`runq.rodata`).
    Memory {
        name: String,
        bytes: Arc<Vec<u8>>,
    },
}

impl ObjectSource {
    /// How messages name the object.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Memory { name, .. } => format!("the {name} object"),
        }
    }
}

/// Bytes written into a data section before load (a global set from Python).
#[derive(Debug, Clone)]
pub struct GlobalPatch {
    pub section: String,
    pub offset: usize,
    pub bytes: Vec<u8>,
}

/// A ring buffer to drain, and the size of its records when known (records
/// of unknown type are consumed and counted, not decoded).
#[derive(Debug, Clone)]
pub struct RingSpec {
    pub map: String,
    pub record_size: Option<usize>,
}

/// An entry written into a map after load and before attach, so the programs
/// see it from their first run (the run-queue probe's cgroup filter, say).
#[derive(Debug, Clone)]
pub struct MapEntry {
    pub map: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub source: ObjectSource,
    pub patches: Vec<GlobalPatch>,
    /// Load only these programs (all when None).
    pub programs: Option<Vec<String>>,
    pub rings: Vec<RingSpec>,
    pub policy: BatchPolicy,
    pub pending_batches: usize,
    /// Sampling frequency of the `perf_event` programs not in `perf_events`
    /// (a CPU-clock sample on every CPU).
    pub perf_hz: u64,
    /// The perf event of each `perf_event` program named here, by program.
    pub perf_events: Vec<(String, PerfEventSpec)>,
    /// New capacities of maps by name (bytes for ring buffers).
    pub max_entries: Vec<(String, u32)>,
    pub initial_entries: Vec<MapEntry>,
    /// `SEC("syscall")` programs run once, in this order, after load and
    /// before anything attaches (bpftrace's BEGIN runs before its probes
    /// attach, so an interval probe counts from after BEGIN).
    pub run_before_attach: Vec<String>,
}
