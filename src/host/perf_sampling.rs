//! Opening the perf events that drive `perf_event` programs: one event per
//! CPU in the spec's scope (every online CPU, or the first), software or
//! hardware, sampled at a frequency or a fixed period.

use std::io;
use std::os::fd::FromRawFd as _;
use std::os::fd::OwnedFd;
use std::path::Path;

use libbpf_rs::libbpf_sys;

use crate::errors::HostError;
use crate::host::perf_events::CpuScope;
use crate::host::perf_events::EventKind;
use crate::host::perf_events::PerfEventSpec;
use crate::host::perf_events::Sampling;

/// From linux/perf_event.h (not in the libc crate).
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// Where the kernel lists the CPU's PMU when it has one (x86 "cpu", arm
/// "armv8_pmuv3..."); a VM without a virtual PMU has none.
const EVENT_SOURCES: &str = "/sys/bus/event_source/devices";

/// Opens the event `spec` describes on each CPU in its scope, for `program`
/// (named in errors).
pub fn open(spec: &PerfEventSpec, program: &str) -> Result<Vec<OwnedFd>, HostError> {
    let mut cpus = online_cpus()?;
    if spec.cpus == CpuScope::First {
        cpus.truncate(1);
    }
    let mut attr = libbpf_sys::perf_event_attr {
        type_: spec.kind.perf_type(),
        size: size_of::<libbpf_sys::perf_event_attr>() as u32,
        config: spec.config,
        ..Default::default()
    };
    match spec.sampling {
        Sampling::Frequency(hz) => {
            attr.__bindgen_anon_1.sample_freq = hz;
            attr.set_freq(1);
        }
        Sampling::Period(events) => attr.__bindgen_anon_1.sample_period = events,
    }
    let mut fds = Vec::with_capacity(cpus.len());
    for cpu in cpus {
        // SAFETY: perf_event_open reads `attr`, which lives across the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &raw const attr,
                -1 as libc::pid_t,
                cpu as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            return Err(HostError::Attach(format!(
                "opening perf event {} for program {program:?} on CPU {cpu} failed: {err}{}",
                spec.describe(),
                open_hint(spec, &err)
            )));
        }
        // SAFETY: the syscall returned a new descriptor that nothing else owns.
        fds.push(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
    }
    Ok(fds)
}

/// The likely cause of a failed perf_event_open, and what to do.
fn open_hint(spec: &PerfEventSpec, err: &io::Error) -> String {
    let errno = err.raw_os_error().unwrap_or_default();
    if spec.kind == EventKind::Hardware
        && matches!(errno, libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV)
    {
        let why = if has_cpu_pmu() {
            "this CPU's PMU does not count this event"
        } else {
            "this machine exposes no hardware performance counters (a VM without a \
             virtual PMU, say)"
        };
        return format!(
            " ({why}: hardware events cannot run here; `perf list hw` shows what can, or \
             use a software event such as cpu-clock)"
        );
    }
    match (errno, spec.sampling) {
        (libc::EINVAL, Sampling::Frequency(hz)) => {
            let limit = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
                .map(|text| text.trim().to_string())
                .unwrap_or_else(|_| "unknown".to_string());
            format!(
                " (is frequency {hz} above the kernel's limit, \
                 /proc/sys/kernel/perf_event_max_sample_rate = {limit}?)"
            )
        }
        (libc::EACCES | libc::EPERM, _) => " (is /proc/sys/kernel/perf_event_paranoid too \
             strict? sampling every CPU needs CAP_PERFMON or root)"
            .to_string(),
        (libc::ENOENT | libc::ENODEV | libc::EOPNOTSUPP, _) => {
            " (this kernel does not offer this event: is it a VM without perf support?)".to_string()
        }
        _ => String::new(),
    }
}

/// Whether the kernel lists a CPU PMU among its event sources: any besides
/// the ones every kernel has.
fn has_cpu_pmu() -> bool {
    const NOT_A_PMU: &[&str] = &[
        "software",
        "tracepoint",
        "kprobe",
        "uprobe",
        "breakpoint",
        "msr",
        "power",
    ];
    let Ok(entries) = std::fs::read_dir(Path::new(EVENT_SOURCES)) else {
        return false;
    };
    entries
        .flatten()
        .any(|entry| !NOT_A_PMU.contains(&entry.file_name().to_string_lossy().as_ref()))
}

/// CPUs listed in /sys/devices/system/cpu/online ("0-3,5").
fn online_cpus() -> Result<Vec<u32>, HostError> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_err(|err| HostError::Attach(format!("reading the online CPUs: {err}")))?;
    parse_cpu_list(&text)
        .filter(|cpus| !cpus.is_empty())
        .ok_or_else(|| HostError::Attach(format!("cannot parse the online CPU list {text:?}")))
}

fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<u32>().ok()?..=last.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(parse_cpu_list("0-3,5\n"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("a-b"), None);
    }

    #[test]
    fn a_missing_hardware_event_is_named_as_such() {
        let cycles = PerfEventSpec::parse("hardware", "cycles", None, Some(1000), "all")
            .expect("a known event");
        let hint = open_hint(&cycles, &io::Error::from_raw_os_error(libc::ENOENT));
        assert!(hint.contains("hardware events cannot run here"), "{hint}");
        let clock = PerfEventSpec::cpu_clock_hz(1_000_000);
        let hint = open_hint(&clock, &io::Error::from_raw_os_error(libc::EINVAL));
        assert!(hint.contains("perf_event_max_sample_rate"), "{hint}");
    }
}
