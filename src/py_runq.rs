//! Python binding of the run-queue probe core (`noisy_neighbor._native.RunqCore`);
//! the public `noisy_neighbor.RunqProbe` wraps it with paths, histograms and
//! event batches.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use numpy::IntoPyArray as _;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::ProbeError;
use crate::event_batch::EventColumns;
use crate::py_wait::batch_policy;
use crate::py_wait::recv_batch;
use crate::py_wait::Received;
use crate::runq_probe::Method;
use crate::runq_probe::RunqConfig;
use crate::runq_probe::RunqProbe;
use crate::runq_probe::StreamConfig;

/// (cgroup_id, voluntary, preempted_same, preempted_other, preempted_system)
type SwitchOutRow = (u64, u64, u64, u64, u64);

/// Loads, attaches and reads the run-queue probe.
#[pyclass(module = "noisy_neighbor._native", name = "RunqCore")]
pub struct PyRunqCore {
    probe: RunqProbe,
    stream_finished: AtomicBool,
}

fn stream_config(
    ring_buffer_bytes: u64,
    batch_events: usize,
    batch_ms: f64,
    rate_limit_ns: Option<u64>,
    pending_batches: usize,
    synthetic: bool,
) -> PyResult<StreamConfig> {
    let page = 4096;
    let ring_buffer_bytes = u32::try_from(ring_buffer_bytes)
        .ok()
        .filter(|&bytes| bytes >= page && bytes.is_power_of_two())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "ring_buffer_bytes must be a power of two between 4096 and 2**31, got \
                 {ring_buffer_bytes} (e.g. 16 << 20)"
            ))
        })?;
    let policy = batch_policy(batch_events, batch_ms, pending_batches)?;
    if rate_limit_ns == Some(0) {
        return Err(PyValueError::new_err(
            "rate_limit_ns must be positive, or None for no limit",
        ));
    }
    Ok(StreamConfig {
        ring_buffer_bytes,
        policy,
        rate_limit_ns: rate_limit_ns.unwrap_or(0),
        pending_batches,
        synthetic,
    })
}

/// Hands each column to numpy without copying (the array takes the Vec).
fn columns_to_dict(py: Python<'_>, columns: EventColumns) -> PyResult<Bound<'_, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("ts_ns", columns.ts_ns.into_pyarray(py))?;
    dict.set_item("cpu", columns.cpu.into_pyarray(py))?;
    dict.set_item("pid", columns.pid.into_pyarray(py))?;
    dict.set_item("tgid", columns.tgid.into_pyarray(py))?;
    dict.set_item("prev_pid", columns.prev_pid.into_pyarray(py))?;
    dict.set_item("cgroup_id", columns.cgroup_id.into_pyarray(py))?;
    dict.set_item("prev_cgroup_id", columns.prev_cgroup_id.into_pyarray(py))?;
    dict.set_item("latency_ns", columns.latency_ns.into_pyarray(py))?;
    dict.set_item("preempted", columns.preempted.into_pyarray(py))?;
    Ok(dict)
}

#[pymethods]
impl PyRunqCore {
    /// Loads and attaches the probe; raises a NoisyNeighborError subclass that
    /// says what to do when the kernel or privileges do not allow it.
    #[new]
    #[pyo3(signature = (
        method = "auto",
        cgroup_ids = None,
        max_cgroups = 10240,
        stream = false,
        ring_buffer_bytes = 16 << 20,
        batch_events = 65536,
        batch_ms = 100.0,
        rate_limit_ns = None,
        pending_batches = 16,
        synthetic = false,
        attribution = false,
        system_slice_id = 0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        method: &str,
        cgroup_ids: Option<Vec<u64>>,
        max_cgroups: u32,
        stream: bool,
        ring_buffer_bytes: u64,
        batch_events: usize,
        batch_ms: f64,
        rate_limit_ns: Option<u64>,
        pending_batches: usize,
        synthetic: bool,
        attribution: bool,
        system_slice_id: u64,
    ) -> PyResult<Self> {
        let method = Method::parse(method).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown method {method:?}: use \"auto\", \"sched_info\" or \"wakeup\""
            ))
        })?;
        if max_cgroups == 0 {
            return Err(PyValueError::new_err("max_cgroups must be at least 1"));
        }
        let stream = if stream {
            Some(stream_config(
                ring_buffer_bytes,
                batch_events,
                batch_ms,
                rate_limit_ns,
                pending_batches,
                synthetic,
            )?)
        } else {
            None
        };
        let config = RunqConfig {
            method,
            cgroup_filter: cgroup_ids,
            max_cgroups,
            stream,
            attribution,
            system_slice_id,
        };
        // Loading runs the verifier, which can take a while: let Python run.
        let probe = py.detach(|| RunqProbe::start(config))?;
        Ok(Self {
            probe,
            stream_finished: AtomicBool::new(false),
        })
    }

    /// The method in use: "sched_info" or "wakeup".
    #[getter]
    fn method(&self) -> &'static str {
        self.probe.method().name()
    }

    #[getter]
    fn running(&self) -> bool {
        self.probe.is_running()
    }

    #[getter]
    fn streaming(&self) -> bool {
        self.probe.batches().is_some()
    }

    /// True once the probe has stopped and every batch has been taken.
    #[getter]
    fn stream_finished(&self) -> bool {
        self.stream_finished.load(Relaxed)
    }

    /// Detaches and unloads the programs. Maps stay readable; batches already
    /// made stay available to `next_batch`.
    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.probe.stop());
    }

    /// The next batch of events as a dict of numpy columns, or None if none
    /// came within `timeout` seconds (None: wait as long as the stream lasts)
    /// or the stream has finished (see `stream_finished`). Waits without the
    /// GIL, in slices, and raises KeyboardInterrupt on Ctrl-C.
    #[pyo3(signature = (timeout = None))]
    fn next_batch<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(receiver) = self.probe.batches() else {
            return Err(ProbeError::State(
                "this probe does not stream: create it with stream=True".to_string(),
            )
            .into());
        };
        match recv_batch(py, receiver, timeout)? {
            Received::Batch(columns) => columns_to_dict(py, columns).map(Some),
            Received::Finished => {
                self.stream_finished.store(true, Relaxed);
                Ok(None)
            }
            Received::TimedOut => Ok(None),
        }
    }

    /// Benchmark only (needs `stream=True, synthetic=True`): the kernel writes
    /// `count` events with cgroup id 0 into the ring buffer, as fast as it can.
    fn synthetic_burst(&self, py: Python<'_>, count: u64) -> PyResult<()> {
        // bpf_loop's limit (BPF_MAX_LOOPS)
        if count == 0 || count > 1 << 23 {
            return Err(PyValueError::new_err("count must be between 1 and 2**23"));
        }
        py.detach(|| self.probe.synthetic_burst(count))?;
        Ok(())
    }

    /// Waits split by who had the CPU: (cgroup_id, culprit_cgroup_id, count,
    /// total_ns) tuples, culprit 0 meaning the CPU was idle.
    fn blame(&self, py: Python<'_>) -> PyResult<Vec<(u64, u64, u64, u64)>> {
        let blame = py.detach(|| self.probe.blame())?;
        Ok(blame
            .into_iter()
            .map(|b| (b.cgroup_id, b.culprit_cgroup_id, b.count, b.total_ns))
            .collect())
    }

    /// Switch-outs per cgroup: (cgroup_id, voluntary, preempted_same,
    /// preempted_other, preempted_system) tuples.
    fn switch_outs(&self, py: Python<'_>) -> PyResult<Vec<SwitchOutRow>> {
        let outs = py.detach(|| self.probe.switch_outs())?;
        Ok(outs
            .into_iter()
            .map(|o| {
                (
                    o.cgroup_id,
                    o.voluntary,
                    o.preempted_same,
                    o.preempted_other,
                    o.preempted_system,
                )
            })
            .collect())
    }

    /// Kernel-side counters summed over CPUs, and what happened to streamed
    /// records in user space.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counters = py.detach(|| self.probe.counters())?;
        let dict = PyDict::new(py);
        for (name, value) in counters.named() {
            dict.set_item(name, value)?;
        }
        let drain = self.probe.drain_stats();
        dict.set_item("batches", drain.batches_sent.load(Relaxed))?;
        dict.set_item("batched_events", drain.events_sent.load(Relaxed))?;
        dict.set_item("dropped_batches", drain.dropped_batches.load(Relaxed))?;
        dict.set_item(
            "dropped_batch_events",
            drain.dropped_batch_events.load(Relaxed),
        )?;
        dict.set_item("malformed_records", drain.malformed_records.load(Relaxed))?;
        dict.set_item("ring_errors", drain.ring_errors.load(Relaxed))?;
        Ok(dict)
    }

    /// Raw per-cgroup records: (cgroup_id, slots, count, total_ns, max_ns, comm,
    /// cgroup_name), slots as a numpy uint64 array.
    #[allow(clippy::type_complexity)]
    fn histograms<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<
        Vec<(
            u64,
            Bound<'py, numpy::PyArray1<u64>>,
            u64,
            u64,
            u64,
            String,
            String,
        )>,
    > {
        let hists = py.detach(|| self.probe.histograms())?;
        Ok(hists
            .into_iter()
            .map(|h| {
                (
                    h.cgroup_id,
                    h.slots.into_pyarray(py),
                    h.count,
                    h.total_ns,
                    h.max_ns,
                    h.comm,
                    h.cgroup_name,
                )
            })
            .collect())
    }

    fn __repr__(&self) -> String {
        format!(
            "RunqCore(method={:?}, running={}, streaming={})",
            self.probe.method().name(),
            self.probe.is_running(),
            self.probe.batches().is_some()
        )
    }
}
