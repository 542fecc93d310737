//! CPU-clock sampling events for `perf_event` programs: one software event
//! per online CPU, at a fixed frequency, like `bpftrace`'s `profile:hz:N`.

use std::os::fd::FromRawFd as _;
use std::os::fd::OwnedFd;

use libbpf_rs::libbpf_sys;

use crate::errors::HostError;

/// From linux/perf_event.h (not in the libc crate).
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// Opens a CPU-clock sampling event at `hz` on each online CPU.
pub fn open_cpu_clock(hz: u64) -> Result<Vec<OwnedFd>, HostError> {
    let cpus = online_cpus()?;
    let mut fds = Vec::with_capacity(cpus.len());
    for cpu in cpus {
        let mut attr = libbpf_sys::perf_event_attr {
            type_: libbpf_sys::PERF_TYPE_SOFTWARE,
            size: size_of::<libbpf_sys::perf_event_attr>() as u32,
            config: u64::from(libbpf_sys::PERF_COUNT_SW_CPU_CLOCK),
            ..Default::default()
        };
        attr.__bindgen_anon_1.sample_freq = hz;
        attr.set_freq(1);
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
            return Err(HostError::Attach(format!(
                "opening a CPU-clock perf event on CPU {cpu} failed: {} (is \
                 /proc/sys/kernel/perf_event_paranoid too strict, or is this a VM \
                 without perf support?)",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: the syscall returned a new descriptor that nothing else owns.
        fds.push(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
    }
    Ok(fds)
}

/// CPUs listed in /sys/devices/system/cpu/online ("0-3,5").
fn online_cpus() -> Result<Vec<u32>, HostError> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_err(|err| HostError::Attach(format!("reading the online CPUs: {err}")))?;
    parse_cpu_list(&text)
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
}
