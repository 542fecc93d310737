//! The probe host: describes, loads, attaches and runs any CO-RE BPF object,
//! the run-queue probe's included, and reads its maps.

pub mod attach;
pub mod btf_layout;
pub mod config;
pub mod cpu_rings;
pub mod load;
pub mod map_read;
pub mod map_write;
pub mod object;
pub mod owner_thread;
pub mod perf_events;
pub mod perf_sampling;
pub mod probe_host;
pub mod sections;
pub mod test_run;
pub mod unload;
