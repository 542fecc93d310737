//! What the running kernel and process can do, and libbpf's messages.

pub mod kernel;
pub mod libbpf_log;
