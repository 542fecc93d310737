//! `noisy_neighbor._native`: the Rust core of noisy-neighbor. This file only
//! declares the parts and the Python module.
//!
//! `host` loads and runs BPF objects; `stream` turns ring buffers into
//! batches; `sys` checks the kernel; `runq` is the run-queue probe, the host's
//! first plugin; `py` is the Python binding of all of them.
//!
//! Input from Python flows through all of it, and a panic would abort the
//! interpreter (or unwind into libbpf's C callbacks): outside tests, errors
//! are returned, never unwrapped.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)
)]

mod errors;
mod host;
mod py;
mod runq;
mod stream;
mod sys;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::py::host::HostCore;
    #[pymodule_export]
    use crate::py::host::MapEntries;
    #[pymodule_export]
    use crate::py::host::RingStats;
    #[pymodule_export]
    use crate::py::object::inspect_object;
    #[pymodule_export]
    use crate::py::object::Field;
    #[pymodule_export]
    use crate::py::object::GlobalInfo;
    #[pymodule_export]
    use crate::py::object::Layout;
    #[pymodule_export]
    use crate::py::object::MapInfo;
    #[pymodule_export]
    use crate::py::object::ObjectInfo;
    #[pymodule_export]
    use crate::py::object::ProgramInfo;
    #[pymodule_export]
    use crate::py::perf_event::PerfEvent;
    #[pymodule_export]
    use crate::py::runq::runq_object;
    #[pymodule_export]
    use crate::py::runq::runq_plan;
    #[pymodule_export]
    use crate::py::runq::RunqPlan;

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
