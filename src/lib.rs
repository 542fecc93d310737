//! `noisy_neighbor._native`: the Rust core of noisy-neighbor. This file only
//! declares the Python module; each concern lives in its own file.

mod btf_layout;
mod drain;
mod errors;
mod event_batch;
mod kernel;
mod libbpf_log;
mod owner_thread;
mod perf_sampling;
mod plugin_host;
mod plugin_object;
mod pod;
mod py_plugin;
mod py_runq;
mod py_wait;
mod ring_reader;
mod runq_loader;
mod runq_probe;
mod runq_skel;
mod test_run;
mod unload;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::py_plugin::inspect_object;
    #[pymodule_export]
    use crate::py_plugin::PyPluginCore;
    #[pymodule_export]
    use crate::py_runq::PyRunqCore;

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
