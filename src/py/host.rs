//! Python binding of the probe host (`noisy_neighbor._native.HostCore`): runs
//! one BPF object, a user's plugin or the embedded run-queue probe. The
//! public `noisy_neighbor.Plugin` (and through it `RunqProbe`) turns its raw
//! bytes into numpy columns by their BTF layouts.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use numpy::IntoPyArray as _;
use numpy::PyArray1;
use pyo3::prelude::*;

use crate::errors::HostError;
use crate::host::config::GlobalPatch;
use crate::host::config::HostConfig;
use crate::host::config::MapEntry;
use crate::host::config::RingSpec;
use crate::host::owner_thread::lock;
use crate::host::probe_host::ProbeHost;
use crate::py::object::SourceArg;
use crate::py::perf_event::PerfEvent;
use crate::py::wait::batch_policy;
use crate::py::wait::recv_batch;
use crate::py::wait::Received;
use crate::stream::batch::DrainStats;

/// Every entry of a map: keys and values back to back (`cpus` values per
/// key for per-CPU maps), for Python to split by their layouts.
#[pyclass(module = "noisy_neighbor._native", frozen)]
pub struct MapEntries {
    keys: Py<PyArray1<u8>>,
    values: Py<PyArray1<u8>>,
    #[pyo3(get)]
    count: usize,
    #[pyo3(get)]
    cpus: usize,
}

#[pymethods]
impl MapEntries {
    #[getter]
    fn keys(&self, py: Python<'_>) -> Py<PyArray1<u8>> {
        self.keys.clone_ref(py)
    }

    #[getter]
    fn values(&self, py: Python<'_>) -> Py<PyArray1<u8>> {
        self.values.clone_ref(py)
    }
}

/// What happened to one ring's records in user space. The names are those of
/// `stats()` for every probe.
#[pyclass(module = "noisy_neighbor._native", frozen, get_all)]
pub struct RingStats {
    /// Batches handed to Python, and the records in them.
    batches: u64,
    batched_events: u64,
    /// Batches dropped because Python was not keeping up.
    dropped_batches: u64,
    dropped_batch_events: u64,
    /// Records too short for their record type.
    malformed_records: u64,
    /// Records of a ring whose record type is unknown: counted, not decoded.
    undecoded_records: u64,
    /// Failed ring-buffer polls (records stay in the ring).
    ring_errors: u64,
}

impl From<&DrainStats> for RingStats {
    fn from(stats: &DrainStats) -> Self {
        let read = |counter: &AtomicU64| counter.load(Relaxed);
        Self {
            batches: read(&stats.batches),
            batched_events: read(&stats.batched_events),
            dropped_batches: read(&stats.dropped_batches),
            dropped_batch_events: read(&stats.dropped_batch_events),
            malformed_records: read(&stats.malformed_records),
            undecoded_records: read(&stats.undecoded_records),
            ring_errors: read(&stats.ring_errors),
        }
    }
}

#[pymethods]
impl RingStats {
    /// The counters' names, in the order of `to_dict`.
    #[classattr]
    const NAMES: [&'static str; 7] = [
        "batches",
        "batched_events",
        "dropped_batches",
        "dropped_batch_events",
        "malformed_records",
        "undecoded_records",
        "ring_errors",
    ];

    /// The counters by name.
    fn to_dict(&self) -> Vec<(&'static str, u64)> {
        let values = [
            self.batches,
            self.batched_events,
            self.dropped_batches,
            self.dropped_batch_events,
            self.malformed_records,
            self.undecoded_records,
            self.ring_errors,
        ];
        Self::NAMES.into_iter().zip(values).collect()
    }
}

/// A loaded and attached BPF object.
#[pyclass(module = "noisy_neighbor._native")]
pub struct HostCore {
    host: ProbeHost,
    /// Rings whose stream has ended and been emptied.
    finished: Mutex<HashSet<String>>,
}

#[pymethods]
impl HostCore {
    /// Loads the object (a path, or its bytes named `name`), writes `patches`
    /// [(section, offset, bytes)] into its data sections, sizes maps from
    /// `max_entries` [(map, entries)], fills `initial_entries` [(map, key,
    /// value)] and attaches its programs (only `programs` when given): each
    /// `perf_event` program on its event in `perf_events` [(program,
    /// PerfEvent)], the others on a CPU-clock sample at `perf_hz` on every
    /// CPU. Each of `rings` [(map, record_size or None)] is drained into
    /// batches.
    #[new]
    #[pyo3(signature = (
        source,
        name = None,
        patches = Vec::new(),
        programs = None,
        rings = Vec::new(),
        batch_events = 65536,
        batch_ms = 100.0,
        pending_batches = 16,
        perf_hz = 99,
        max_entries = Vec::new(),
        initial_entries = Vec::new(),
        perf_events = Vec::new(),
        run_before_attach = Vec::new(),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        source: SourceArg,
        name: Option<String>,
        patches: Vec<(String, usize, Vec<u8>)>,
        programs: Option<Vec<String>>,
        rings: Vec<(String, Option<usize>)>,
        batch_events: usize,
        batch_ms: f64,
        pending_batches: usize,
        perf_hz: u64,
        max_entries: Vec<(String, u32)>,
        initial_entries: Vec<(String, Vec<u8>, Vec<u8>)>,
        perf_events: Vec<(String, PyRef<'_, PerfEvent>)>,
        run_before_attach: Vec<String>,
    ) -> PyResult<Self> {
        let policy = batch_policy(batch_events, batch_ms, pending_batches)?;
        if perf_hz == 0 {
            return Err(HostError::Argument("perf_hz must be at least 1".to_string()).into());
        }
        let config = HostConfig {
            source: source.into_source(name),
            patches: patches
                .into_iter()
                .map(|(section, offset, bytes)| GlobalPatch {
                    section,
                    offset,
                    bytes,
                })
                .collect(),
            programs,
            rings: rings
                .into_iter()
                .map(|(map, record_size)| RingSpec {
                    map,
                    record_size: record_size.filter(|&s| s > 0),
                })
                .collect(),
            policy,
            pending_batches,
            perf_hz,
            perf_events: perf_events
                .into_iter()
                .map(|(program, event)| (program, event.spec.clone()))
                .collect(),
            max_entries,
            initial_entries: initial_entries
                .into_iter()
                .map(|(map, key, value)| MapEntry { map, key, value })
                .collect(),
            run_before_attach,
        };
        // Loading runs the verifier, which can take a while: let Python run.
        let host = py.detach(|| ProbeHost::start(config))?;
        Ok(Self {
            host,
            finished: Mutex::default(),
        })
    }

    #[getter]
    fn running(&self) -> bool {
        self.host.is_running()
    }

    /// Detaches and unloads the programs; maps stay readable and batches
    /// already made stay available.
    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.host.stop());
    }

    /// True once ring `map` has stopped and every batch has been taken.
    fn ring_finished(&self, map: &str) -> bool {
        lock(&self.finished).contains(map)
    }

    /// The next batch of ring `map`: its records back to back as a uint8
    /// array, or None on timeout or once the ring is finished. Waits without
    /// the GIL, in slices, and raises KeyboardInterrupt on Ctrl-C.
    #[pyo3(signature = (map, timeout = None))]
    fn next_batch<'py>(
        &self,
        py: Python<'py>,
        map: &str,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyArray1<u8>>>> {
        let stream = self.host.stream(map)?;
        match recv_batch(py, &stream.batches, timeout)? {
            Received::Batch(records) => Ok(Some(records.bytes.into_pyarray(py))),
            Received::Finished => {
                lock(&self.finished).insert(map.to_string());
                Ok(None)
            }
            Received::TimedOut => Ok(None),
        }
    }

    /// Every entry of map `name`.
    fn read_map(&self, py: Python<'_>, name: &str) -> PyResult<MapEntries> {
        let entries = py.detach(|| self.host.read_map(name))?;
        Ok(MapEntries {
            keys: entries.keys.into_pyarray(py).unbind(),
            values: entries.values.into_pyarray(py).unbind(),
            count: entries.count,
            cpus: entries.cpus,
        })
    }

    /// Deletes the entries of map `name` under `keys` (back to back); returns
    /// how many there were.
    fn delete_keys(&self, py: Python<'_>, name: &str, keys: Vec<u8>) -> PyResult<usize> {
        Ok(py.detach(|| self.host.delete_keys(name, &keys))?)
    }

    /// Writes entries into map `name`: `keys` back to back, `values` back to
    /// back (one per possible CPU per key for a per-CPU map, as `read_map`
    /// gives them). Returns how many.
    fn update_entries(
        &self,
        py: Python<'_>,
        name: &str,
        keys: Vec<u8>,
        values: Vec<u8>,
    ) -> PyResult<usize> {
        Ok(py.detach(|| self.host.update_entries(name, &keys, &values))?)
    }

    /// Deletes every key of map `name`, or zeroes every value of an array;
    /// returns how many entries it emptied.
    fn clear_map(&self, py: Python<'_>, name: &str) -> PyResult<usize> {
        Ok(py.detach(|| self.host.clear_map(name))?)
    }

    /// Sets every value of map `name` to zero, keeping its keys; returns how
    /// many.
    fn zero_map(&self, py: Python<'_>, name: &str) -> PyResult<usize> {
        Ok(py.detach(|| self.host.zero_map(name))?)
    }

    /// Runs the `SEC("syscall")` program `name` once with `ctx` (its context
    /// struct as bytes); returns the program's return value.
    #[pyo3(signature = (name, ctx = Vec::new()))]
    fn run_program(&self, py: Python<'_>, name: &str, ctx: Vec<u8>) -> PyResult<u32> {
        Ok(py.detach(|| self.host.run_program(name, &ctx))?)
    }

    /// The current bytes of data section `section` (where globals live).
    fn read_section<'py>(
        &self,
        py: Python<'py>,
        section: &str,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let bytes = py.detach(|| self.host.read_section(section))?;
        Ok(bytes.into_pyarray(py))
    }

    /// Per streamed ring buffer: what happened to its records in user space.
    fn counters(&self) -> Vec<(String, RingStats)> {
        self.host
            .streams()
            .map(|(map, stream)| (map.clone(), RingStats::from(&*stream.stats)))
            .collect()
    }
}
