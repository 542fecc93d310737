//! Captures libbpf's messages (the verifier log among them) instead of letting
//! them go to the host's stderr, so a load failure can quote the kernel's reason.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use libbpf_rs::ErrorKind;
use libbpf_rs::PrintLevel;

use crate::errors::HostError;
use crate::sys::kernel;

/// Lines kept: enough for the tail of a verifier log.
const KEPT_LINES: usize = 200;

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Whether a verifier log began since the last `start_capture` (kept apart
/// from LOG, whose start a long log pushes out).
static SAW_VERIFIER_LOG: AtomicBool = AtomicBool::new(false);

fn capture(_level: PrintLevel, message: String) {
    // Never panic here: this is called from C. A poisoned lock still holds data.
    if message.contains("BEGIN PROG LOAD LOG") {
        SAW_VERIFIER_LOG.store(true, Relaxed);
    }
    let mut log = LOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    log.extend(message.lines().map(str::to_owned));
    let excess = log.len().saturating_sub(KEPT_LINES);
    log.drain(..excess);
}

/// Routes libbpf's messages (debug level included, for the verifier log) into
/// the capture buffer and clears it.
pub fn start_capture() {
    SAW_VERIFIER_LOG.store(false, Relaxed);
    LOG.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clear();
    libbpf_rs::set_print(Some((PrintLevel::Info, capture)));
}

/// Whether the captured messages include a program's verifier log.
fn holds_verifier_log() -> bool {
    SAW_VERIFIER_LOG.load(Relaxed)
}

/// The last `lines` captured lines, joined for an error message.
pub fn tail(lines: usize) -> String {
    let log = LOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let start = log.len().saturating_sub(lines);
    log[start..].join("\n")
}

/// The error for a failed load of `what`: missing privileges, or the kernel's
/// (usually the verifier's) reason, quoted from the end of the captured log.
pub fn load_error(err: &libbpf_rs::Error, what: &str) -> HostError {
    // The verifier also answers EACCES (an invalid memory access, say), and
    // the kernel EPERM for hooks it cannot serve: only a refusal without a
    // verifier log, to a process without the capabilities, is about privileges.
    let refused = err.kind() == ErrorKind::PermissionDenied && !holds_verifier_log();
    if refused && kernel::check_privileges().is_ok() {
        return HostError::Load(format!(
            "the kernel refused to load {what} ({err}) although this process has the \
             privileges: it may not support a program's hook on this build (fentry/fexit \
             need BPF trampolines; lsm needs BPF LSM enabled)\n\
             --- libbpf log (tail) ---\n{}",
            tail(10)
        ));
    }
    if refused {
        return HostError::Privilege(format!(
            "the kernel refused to load {what} ({err}): run as root or with \
             CAP_BPF+CAP_PERFMON, and check kernel lockdown (/sys/kernel/security/lockdown)"
        ));
    }
    HostError::Load(format!(
        "the kernel rejected {what}: {err}\n--- libbpf/verifier log (tail) ---\n{}",
        tail(30)
    ))
}
