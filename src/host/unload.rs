//! Waiting for the kernel to really free our programs. Closing the last file
//! descriptor and link of a tracing program frees it only after an RCU grace
//! period (tens of milliseconds here), so without this wait a `bpftool prog`
//! run right after `stop()` could still list it.

use std::os::fd::AsFd as _;
use std::thread;
use std::time::Duration;
use std::time::Instant;

use libbpf_rs::ErrorKind;
use libbpf_rs::Object;
use libbpf_rs::Program;

/// Kernel ids of the programs of `object` that were loaded.
pub fn loaded_program_ids(object: &Object) -> Vec<u32> {
    object
        .progs()
        .filter(|prog| prog.autoload())
        .filter_map(|prog| Program::id_from_fd(prog.as_fd()).ok())
        .collect()
}

/// Polls until none of `ids` names a live program, or `timeout` passes.
/// Returns whether they are all gone.
pub fn wait_until_unloaded(ids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let alive = ids.iter().any(|&id| match Program::fd_from_id(id) {
            Ok(_fd) => true, // the fd is closed again right here
            Err(err) => err.kind() != ErrorKind::NotFound,
        });
        if !alive {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}
