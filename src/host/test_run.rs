//! Running a loaded `SEC("syscall")` program once, on demand, through
//! BPF_PROG_TEST_RUN: how the benchmark source and plugins' on-demand
//! programs are driven.

use std::os::fd::AsRawFd as _;
use std::os::fd::BorrowedFd;

use crate::errors::HostError;

/// Runs the program behind `program` with `ctx` as its context; returns the
/// program's return value.
pub fn run_syscall_program(program: BorrowedFd<'_>, ctx: &[u8]) -> Result<u32, HostError> {
    let mut opts = libbpf_rs::libbpf_sys::bpf_test_run_opts {
        sz: size_of::<libbpf_rs::libbpf_sys::bpf_test_run_opts>() as _,
        ctx_in: if ctx.is_empty() {
            std::ptr::null()
        } else {
            ctx.as_ptr().cast()
        },
        ctx_size_in: u32::try_from(ctx.len())
            .map_err(|_| HostError::Argument("the context is larger than 4 GiB".to_string()))?,
        ..Default::default()
    };
    // SAFETY: `opts` is initialised with its own size, `ctx_in` points to `ctx`
    // (which outlives the call) with its exact size, and the fd is a live
    // program descriptor.
    let rc =
        unsafe { libbpf_rs::libbpf_sys::bpf_prog_test_run_opts(program.as_raw_fd(), &mut opts) };
    if rc != 0 {
        return Err(HostError::MapAccess(format!(
            "running the program failed: {} (only SEC(\"syscall\") programs run on demand)",
            std::io::Error::last_os_error()
        )));
    }
    Ok(opts.retval)
}
