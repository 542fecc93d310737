//! The run-queue probe as the host's first plugin: its compiled object,
//! embedded in the extension, and which of its programs to load on this
//! kernel. Everything else (globals, map sizes, the cgroup filter, records)
//! goes through the host like any plugin's.

use crate::errors::HostError;
use crate::sys::kernel;

/// The object's bytes, aligned as an ELF image wants to be read in place.
#[repr(C, align(8))]
struct Aligned<Bytes: ?Sized>(Bytes);

static OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/runq.bpf.o")));

/// `src/bpf/runq.bpf.c`, compiled by build.rs.
pub fn object() -> &'static [u8] {
    &OBJECT.0
}

/// How a wait is measured (see `src/bpf/runq.bpf.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Whichever of the two below this kernel supports, `SchedInfo` first.
    Auto,
    /// The kernel's own enqueue stamps: exact, one hook.
    SchedInfo,
    /// Wakeup hooks and per-task timestamps: for kernels without sched_info.
    Wakeup,
}

impl Method {
    pub fn parse(name: &str) -> Result<Self, HostError> {
        match name {
            "auto" => Ok(Self::Auto),
            "sched_info" => Ok(Self::SchedInfo),
            "wakeup" => Ok(Self::Wakeup),
            _ => Err(HostError::Argument(format!(
                "unknown method {name:?}: use \"auto\", \"sched_info\" or \"wakeup\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::SchedInfo => "sched_info",
            Self::Wakeup => "wakeup",
        }
    }
}

/// The method this kernel runs, the programs that measure it, and how they
/// walk a task's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub method: Method,
    pub programs: Vec<&'static str>,
    /// Walk `task->cgroups` under the RCU kfuncs (Linux 6.2+, which require
    /// them); without them, with CO-RE probe reads (the `use_rcu_kfuncs`
    /// global of runq.bpf.c).
    pub rcu_kfuncs: bool,
}

/// Which programs measure waits by `method` here. `sched_info_supported`
/// and `runqueues_in_kallsyms` are what the kernel offers (see
/// `core_fixes.bpf.h` for the two flavours of the sched_info program).
pub fn plan_for(
    method: Method,
    sched_info_supported: bool,
    runqueues_in_kallsyms: bool,
) -> Result<Plan, HostError> {
    let method = match method {
        Method::Auto if sched_info_supported => Method::SchedInfo,
        Method::Auto => Method::Wakeup,
        Method::SchedInfo if !sched_info_supported => {
            return Err(HostError::KernelTooOld(
                "this kernel keeps no sched_info (CONFIG_SCHED_INFO, set by SCHEDSTATS or \
                 TASK_DELAY_ACCT): use method=\"wakeup\" or \"auto\""
                    .to_string(),
            ))
        }
        method => method,
    };
    let programs = match method {
        Method::SchedInfo if runqueues_in_kallsyms => vec!["nn_switch_si_pc"],
        Method::SchedInfo => vec!["nn_switch_si"],
        _ => vec!["nn_switch_wk", "nn_wakeup", "nn_wakeup_new"],
    };
    Ok(Plan {
        method,
        programs,
        rcu_kfuncs: true,
    })
}

/// Checks privileges and the kernel, then plans for this kernel.
pub fn plan(method: Method) -> Result<Plan, HostError> {
    kernel::check_privileges()?;
    let btf = kernel::vmlinux_btf()?;
    let sched_info = kernel::sched_info_supported(&btf);
    let runqueues = sched_info && kernel::kallsyms_has("runqueues");
    let plan = plan_for(method, sched_info, runqueues)?;
    Ok(Plan {
        rcu_kfuncs: kernel::has_rcu_kfuncs(&btf),
        ..plan
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip() {
        for method in [Method::Auto, Method::SchedInfo, Method::Wakeup] {
            assert_eq!(Method::parse(method.name()), Ok(method));
        }
        assert!(Method::parse("kprobe").is_err());
    }

    #[test]
    fn auto_prefers_the_kernels_own_stamps() {
        let plan = plan_for(Method::Auto, true, false).expect("sched_info is there");
        assert_eq!(plan.method, Method::SchedInfo);
        assert_eq!(plan.programs, ["nn_switch_si"]);
        let plan = plan_for(Method::Auto, true, true).expect("sched_info is there");
        assert_eq!(plan.programs, ["nn_switch_si_pc"]);
    }

    #[test]
    fn without_sched_info_auto_falls_back_and_sched_info_refuses() {
        let plan = plan_for(Method::Auto, false, false).expect("wakeup always works");
        assert_eq!(plan.method, Method::Wakeup);
        assert_eq!(plan.programs.len(), 3);
        assert!(matches!(
            plan_for(Method::SchedInfo, false, false),
            Err(HostError::KernelTooOld(_))
        ));
    }

    #[test]
    fn the_embedded_object_is_an_elf_bpf_object() {
        // ELF magic, 64-bit, machine EM_BPF (247) at offset 18.
        let object = object();
        assert_eq!(&object[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([object[18], object[19]]), 247);
    }
}
