//! Python binding of what is particular to the run-queue probe: its embedded
//! object and which of its programs this kernel runs. The rest is the host's.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::runq;
use crate::runq::Method;

/// The method this kernel runs and the programs that measure it.
#[pyclass(module = "noisy_neighbor._native", frozen, get_all)]
pub struct RunqPlan {
    /// "sched_info" or "wakeup".
    method: &'static str,
    programs: Vec<&'static str>,
    /// Whether the programs walk a task's cgroup under the RCU kfuncs
    /// (Linux 6.2+) or with CO-RE probe reads (older kernels).
    rcu_kfuncs: bool,
}

/// The compiled run-queue probe (`src/bpf/runq.bpf.c`).
#[pyfunction]
pub fn runq_object(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, runq::object())
}

/// Checks privileges and the kernel, and says which programs measure waits
/// by `method` ("auto", "sched_info" or "wakeup") here.
#[pyfunction]
pub fn runq_plan(py: Python<'_>, method: &str) -> PyResult<RunqPlan> {
    let method = Method::parse(method)?;
    let plan = py.detach(|| runq::plan(method))?;
    Ok(RunqPlan {
        method: plan.method.name(),
        programs: plan.programs,
        rcu_kfuncs: plan.rcu_kfuncs,
    })
}
