//! Checks of what the running kernel and this process can do, made before a
//! probe is loaded so that a missing capability or feature gets a message that
//! says what to do, instead of a bare errno from the verifier.

use std::fs;
use std::path::Path;

use libbpf_rs::btf::types::Func;
use libbpf_rs::btf::types::Struct;
use libbpf_rs::Btf;

use crate::errors::HostError;

const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

// Capability numbers from include/uapi/linux/capability.h.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Parses the hexadecimal `CapEff:` line of `/proc/<pid>/status`.
pub fn effective_capabilities(proc_status: &str) -> Option<u64> {
    proc_status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// Loading and attaching tracing programs needs CAP_BPF and CAP_PERFMON, or
/// CAP_SYS_ADMIN on kernels that predate the split.
pub fn can_load_tracing_bpf(capabilities: u64) -> bool {
    let has = |cap: u32| capabilities & (1u64 << cap) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

pub fn check_privileges() -> Result<(), HostError> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|err| HostError::Privilege(format!("cannot read /proc/self/status: {err}")))?;
    let capabilities = effective_capabilities(&status).unwrap_or(0);
    if can_load_tracing_bpf(capabilities) {
        Ok(())
    } else {
        Err(HostError::Privilege(
            "loading BPF probes needs root or CAP_BPF+CAP_PERFMON: run with sudo, or grant \
             them with `setcap cap_bpf,cap_perfmon+ep` on the Python interpreter"
                .to_string(),
        ))
    }
}

/// The kernel's own type information, which CO-RE relocations are made against.
pub fn vmlinux_btf() -> Result<Btf<'static>, HostError> {
    if !Path::new(VMLINUX_BTF).exists() {
        return Err(HostError::BtfUnavailable(format!(
            "{VMLINUX_BTF} is missing: the kernel was built without CONFIG_DEBUG_INFO_BTF; \
             use a distribution kernel that ships BTF (Debian 11+, Ubuntu 20.10+, RHEL 8.2+...)"
        )));
    }
    Btf::from_vmlinux()
        .map_err(|err| HostError::BtfUnavailable(format!("cannot read {VMLINUX_BTF}: {err}")))
}

/// Whether the kernel has the RCU kfuncs (Linux 6.2+): from 6.2 on, a
/// program must hold them to walk `task->cgroups`; before, it reads the same
/// chain with CO-RE probe reads.
pub fn has_rcu_kfuncs(btf: &Btf<'_>) -> bool {
    ["bpf_rcu_read_lock", "bpf_rcu_read_unlock"]
        .iter()
        .all(|kfunc| btf.type_by_name::<Func>(kfunc).is_some())
}

fn has_member(btf: &Btf<'_>, struct_name: &str, member: &str) -> bool {
    btf.type_by_name::<Struct>(struct_name)
        .is_some_and(|s| s.iter().any(|m| m.name.is_some_and(|name| name == member)))
}

/// Whether the kernel keeps `task->sched_info.last_queued` (CONFIG_SCHED_INFO):
/// the field must exist in BTF, and `/proc/self/schedstat` (which the kernel
/// offers only when it maintains sched_info) must be there.
pub fn sched_info_supported(btf: &Btf<'_>) -> bool {
    has_member(btf, "task_struct", "sched_info")
        && has_member(btf, "sched_info", "last_queued")
        && has_member(btf, "sched_info", "run_delay")
        && Path::new("/proc/self/schedstat").exists()
}

/// Whether /proc/kallsyms lists a kernel symbol (needs root to see addresses,
/// which is also what the verifier needs to resolve it).
pub fn kallsyms_has(symbol: &str) -> bool {
    fs::read_to_string("/proc/kallsyms").is_ok_and(|text| {
        text.lines()
            .any(|line| line.split_whitespace().nth(2) == Some(symbol))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_effective_capabilities() {
        let status = "Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_capabilities(status), Some(0x1ff_ffff_ffff));
        assert_eq!(effective_capabilities("Name:\tx\n"), None);
    }

    #[test]
    fn root_and_split_capabilities_may_load() {
        assert!(can_load_tracing_bpf(0x1ff_ffff_ffff));
        assert!(can_load_tracing_bpf(1 << CAP_SYS_ADMIN));
        assert!(can_load_tracing_bpf((1 << CAP_BPF) | (1 << CAP_PERFMON)));
    }

    #[test]
    fn partial_or_no_capabilities_may_not_load() {
        assert!(!can_load_tracing_bpf(0));
        assert!(!can_load_tracing_bpf(1 << CAP_BPF));
        assert!(!can_load_tracing_bpf(1 << CAP_PERFMON));
    }
}
