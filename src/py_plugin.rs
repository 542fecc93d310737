//! Python binding of the probe host: `inspect_object()` describes a BPF
//! object (programs, maps, globals and their BTF layouts) and `PluginCore`
//! runs it. `noisy_neighbor.Plugin` turns the raw bytes into numpy columns.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;

use numpy::IntoPyArray as _;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::types::PyList;

use crate::btf_layout::Layout;
use crate::btf_layout::Scalar;
use crate::errors::ProbeError;
use crate::plugin_host::GlobalPatch;
use crate::plugin_host::PluginConfig;
use crate::plugin_host::PluginHost;
use crate::plugin_host::RingSpec;
use crate::plugin_object::inspect;
use crate::py_wait::batch_policy;
use crate::py_wait::recv_batch;
use crate::py_wait::Received;

/// {"type_name", "size", "fields": [(name, offset, kind, size, shape, enum_values)]}
fn layout_to_py<'py>(py: Python<'py>, layout: &Layout) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("type_name", &layout.type_name)?;
    dict.set_item("size", layout.size)?;
    let fields = PyList::empty(py);
    for field in &layout.fields {
        let values = match &field.scalar {
            Scalar::Enum { values, .. } => Some(values.clone()),
            _ => None,
        };
        let kind = match field.scalar {
            Scalar::Enum { signed: true, .. } => "enum_signed",
            ref scalar => scalar.name(),
        };
        fields.append((
            &field.name,
            field.offset,
            kind,
            field.size,
            field.shape.clone(),
            values,
        ))?;
    }
    dict.set_item("fields", fields)?;
    Ok(dict)
}

fn optional_layout<'py>(
    py: Python<'py>,
    layout: Option<&Layout>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    layout.map(|l| layout_to_py(py, l)).transpose()
}

/// Describes the object at `path` without loading it: a dict with
/// "programs" [(name, section, attach, why)], "maps" [dict] and "globals"
/// [dict]. `records` names ring buffers' record structs by map name.
#[pyfunction]
#[pyo3(signature = (path, records = None))]
pub fn inspect_object<'py>(
    py: Python<'py>,
    path: PathBuf,
    records: Option<HashMap<String, String>>,
) -> PyResult<Bound<'py, PyDict>> {
    let info = inspect(&path, &records.unwrap_or_default())?;
    let out = PyDict::new(py);
    let programs = PyList::empty(py);
    for prog in &info.programs {
        let why = match &prog.attach {
            crate::plugin_object::Attach::Unsupported(why) => Some(why.clone()),
            _ => None,
        };
        programs.append((&prog.name, &prog.section, prog.attach.name(), why))?;
    }
    out.set_item("programs", programs)?;
    let maps = PyList::empty(py);
    for map in &info.maps {
        let dict = PyDict::new(py);
        dict.set_item("name", &map.name)?;
        dict.set_item("type", &map.map_type)?;
        dict.set_item("per_cpu", map.per_cpu)?;
        dict.set_item("key_size", map.key_size)?;
        dict.set_item("value_size", map.value_size)?;
        dict.set_item("max_entries", map.max_entries)?;
        dict.set_item("key", optional_layout(py, map.key.as_ref())?)?;
        dict.set_item("value", optional_layout(py, map.value.as_ref())?)?;
        dict.set_item("record", optional_layout(py, map.record.as_ref())?)?;
        dict.set_item("ring_buffer", map.is_ring_buffer())?;
        maps.append(dict)?;
    }
    out.set_item("maps", maps)?;
    let globals = PyList::empty(py);
    for global in &info.globals {
        let dict = PyDict::new(py);
        dict.set_item("name", &global.name)?;
        dict.set_item("section", &global.section)?;
        dict.set_item("offset", global.offset)?;
        dict.set_item("layout", layout_to_py(py, &global.layout)?)?;
        globals.append(dict)?;
    }
    out.set_item("globals", globals)?;
    Ok(out)
}

/// A loaded and attached plugin.
#[pyclass(module = "noisy_neighbor._native", name = "PluginCore")]
pub struct PyPluginCore {
    host: PluginHost,
    finished: std::sync::Mutex<std::collections::HashSet<String>>,
}

#[pymethods]
impl PyPluginCore {
    /// Loads the object at `path`, writes `patches` [(section, offset, bytes)]
    /// into its data sections, sizes maps from `max_entries` [(map, entries)],
    /// and attaches its programs (only `programs` when given). Each of `rings`
    /// [(map, record_size or None)] is drained into batches.
    #[new]
    #[pyo3(signature = (
        path,
        patches = Vec::new(),
        programs = None,
        rings = Vec::new(),
        batch_events = 65536,
        batch_ms = 100.0,
        pending_batches = 16,
        perf_hz = 99,
        max_entries = Vec::new(),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        patches: Vec<(String, usize, Vec<u8>)>,
        programs: Option<Vec<String>>,
        rings: Vec<(String, Option<usize>)>,
        batch_events: usize,
        batch_ms: f64,
        pending_batches: usize,
        perf_hz: u64,
        max_entries: Vec<(String, u32)>,
    ) -> PyResult<Self> {
        let policy = batch_policy(batch_events, batch_ms, pending_batches)?;
        if perf_hz == 0 {
            return Err(PyValueError::new_err("perf_hz must be at least 1"));
        }
        let config = PluginConfig {
            path,
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
            max_entries,
        };
        let host = py.detach(|| PluginHost::start(config))?;
        Ok(Self {
            host,
            finished: Default::default(),
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
        self.finished
            .lock()
            .is_ok_and(|finished| finished.contains(map))
    }

    /// The next batch of ring `map`: its records back to back as a uint8
    /// array, or None on timeout or once the ring is finished.
    #[pyo3(signature = (map, timeout = None))]
    fn next_batch<'py>(
        &self,
        py: Python<'py>,
        map: &str,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, numpy::PyArray1<u8>>>> {
        let stream = self.host.stream(map).ok_or_else(|| {
            ProbeError::Map(format!("the plugin streams no ring buffer named {map:?}"))
        })?;
        match recv_batch(py, &stream.batches, timeout)? {
            Received::Batch(records) => Ok(Some(records.bytes.into_pyarray(py))),
            Received::Finished => {
                if let Ok(mut finished) = self.finished.lock() {
                    finished.insert(map.to_string());
                }
                Ok(None)
            }
            Received::TimedOut => Ok(None),
        }
    }

    /// Every entry of map `name`: (keys, values, count, cpus), keys and values
    /// as uint8 arrays of records back to back (`cpus` values per key).
    #[allow(clippy::type_complexity)]
    fn read_map<'py>(
        &self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<(
        Bound<'py, numpy::PyArray1<u8>>,
        Bound<'py, numpy::PyArray1<u8>>,
        usize,
        usize,
    )> {
        let entries = py.detach(|| self.host.read_map(name))?;
        Ok((
            entries.keys.into_pyarray(py),
            entries.values.into_pyarray(py),
            entries.count,
            entries.cpus,
        ))
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
    ) -> PyResult<Bound<'py, numpy::PyArray1<u8>>> {
        let bytes = py.detach(|| self.host.read_section(section))?;
        Ok(bytes.into_pyarray(py))
    }

    /// Per ring buffer: what happened to its records in user space.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (map, stream) in self.host.streams() {
            let stats = &stream.stats;
            let dict = PyDict::new(py);
            dict.set_item("batches", stats.batches_sent.load(Relaxed))?;
            dict.set_item("records", stats.events_sent.load(Relaxed))?;
            dict.set_item("dropped_batches", stats.dropped_batches.load(Relaxed))?;
            dict.set_item("dropped_records", stats.dropped_batch_events.load(Relaxed))?;
            dict.set_item("malformed_records", stats.malformed_records.load(Relaxed))?;
            dict.set_item("undecoded_records", stats.undecoded_records.load(Relaxed))?;
            dict.set_item("ring_errors", stats.ring_errors.load(Relaxed))?;
            out.set_item(map, dict)?;
        }
        Ok(out)
    }
}
