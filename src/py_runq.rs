//! Python binding of the run-queue probe core (`noisy_neighbor._native.RunqCore`);
//! the public `noisy_neighbor.RunqProbe` wraps it with paths and histograms.

use numpy::IntoPyArray as _;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::runq_probe::Method;
use crate::runq_probe::RunqConfig;
use crate::runq_probe::RunqProbe;

/// Loads, attaches and reads the run-queue probe.
#[pyclass(module = "noisy_neighbor._native", name = "RunqCore")]
pub struct PyRunqCore {
    probe: RunqProbe,
}

#[pymethods]
impl PyRunqCore {
    /// Loads and attaches the probe; raises a NoisyNeighborError subclass that
    /// says what to do when the kernel or privileges do not allow it.
    #[new]
    #[pyo3(signature = (method = "auto", cgroup_ids = None, max_cgroups = 10240))]
    fn new(
        py: Python<'_>,
        method: &str,
        cgroup_ids: Option<Vec<u64>>,
        max_cgroups: u32,
    ) -> PyResult<Self> {
        let method = Method::parse(method).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown method {method:?}: use \"auto\", \"sched_info\" or \"wakeup\""
            ))
        })?;
        if max_cgroups == 0 {
            return Err(PyValueError::new_err("max_cgroups must be at least 1"));
        }
        let config = RunqConfig {
            method,
            cgroup_filter: cgroup_ids,
            max_cgroups,
        };
        // Loading runs the verifier, which can take a while: let Python run.
        let probe = py.detach(|| RunqProbe::start(config))?;
        Ok(Self { probe })
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

    /// Detaches and unloads the programs. Maps stay readable.
    fn stop(&mut self, py: Python<'_>) {
        py.detach(|| self.probe.stop());
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

    /// Kernel-side counters summed over CPUs.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counters = py.detach(|| self.probe.counters())?;
        let dict = PyDict::new(py);
        for (name, value) in counters.named() {
            dict.set_item(name, value)?;
        }
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        format!(
            "RunqCore(method={:?}, running={})",
            self.probe.method().name(),
            self.probe.is_running()
        )
    }
}
