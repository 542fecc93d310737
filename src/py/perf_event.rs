//! `noisy_neighbor.PerfEvent`: the perf event a `perf_event` program runs on,
//! checked when it is made, so a bad spec fails before anything loads.

use pyo3::prelude::*;

use crate::host::perf_events::PerfEventSpec;
use crate::host::perf_events::Sampling;

/// A software or hardware perf event (bpftrace's and `perf list`'s names),
/// sampled at `frequency` a second or every `period` events (ns for the
/// clocks), on every online CPU (`cpus="all"`) or the first (`"first"`).
#[pyclass(module = "noisy_neighbor._native", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfEvent {
    pub spec: PerfEventSpec,
}

#[pymethods]
impl PerfEvent {
    #[new]
    #[pyo3(signature = (r#type, event, *, frequency = None, period = None, cpus = "all"))]
    fn new(
        r#type: &str,
        event: &str,
        frequency: Option<i64>,
        period: Option<i64>,
        cpus: &str,
    ) -> PyResult<Self> {
        let spec = PerfEventSpec::parse(r#type, event, frequency, period, cpus)?;
        Ok(Self { spec })
    }

    /// "software" or "hardware".
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        self.spec.kind.name()
    }

    /// The event's canonical name (`context-switches` for `cs`).
    #[getter]
    fn event(&self) -> &'static str {
        self.spec.event
    }

    #[getter]
    fn frequency(&self) -> Option<u64> {
        match self.spec.sampling {
            Sampling::Frequency(hz) => Some(hz),
            Sampling::Period(_) => None,
        }
    }

    #[getter]
    fn period(&self) -> Option<u64> {
        match self.spec.sampling {
            Sampling::Period(events) => Some(events),
            Sampling::Frequency(_) => None,
        }
    }

    /// "all" or "first".
    #[getter]
    fn cpus(&self) -> &'static str {
        self.spec.cpus.name()
    }

    fn __repr__(&self) -> String {
        let sampling = match self.spec.sampling {
            Sampling::Frequency(hz) => format!("frequency={hz}"),
            Sampling::Period(events) => format!("period={events}"),
        };
        format!(
            "PerfEvent(type='{}', event='{}', {sampling}, cpus='{}')",
            self.spec.kind.name(),
            self.spec.event,
            self.spec.cpus.name()
        )
    }
}
