//! The Python face of the core: typed objects and thin wrappers, no logic.

pub mod host;
pub mod object;
pub mod perf_event;
pub mod runq;
pub mod wait;
