//! How the host attaches a program, from its section name alone, and what to
//! tell the user when attaching fails.

/// How the host attaches a program, from its section name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// libbpf attaches it from the section alone.
    Auto,
    /// A `perf_event` program: the host samples CPU time on every CPU.
    PerfEvent,
    /// Loaded but attached to nothing (`syscall` programs, run on demand).
    LoadOnly,
    /// The host cannot attach it; the text says why.
    Unsupported(String),
}

impl Attach {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::PerfEvent => "perf_event",
            Self::LoadOnly => "load_only",
            Self::Unsupported(_) => "unsupported",
        }
    }
}

/// Sections libbpf attaches from the name alone, when a target follows the
/// slash (`tp_btf/sched_switch`, `kprobe/do_nanosleep`).
const AUTO_PREFIXES: &[&str] = &[
    "tp",
    "tracepoint",
    "tp_btf",
    "raw_tp",
    "raw_tracepoint",
    "raw_tp.w",
    "raw_tracepoint.w",
    "fentry",
    "fexit",
    "fmod_ret",
    "fentry.s",
    "fexit.s",
    "fmod_ret.s",
    "kprobe",
    "kretprobe",
    "ksyscall",
    "kretsyscall",
    "kprobe.multi",
    "kretprobe.multi",
    "kprobe.session",
    "uprobe",
    "uretprobe",
    "uprobe.s",
    "uretprobe.s",
    "uprobe.multi",
    "uretprobe.multi",
    "usdt",
    "lsm",
    "lsm.s",
];

/// Decides how a program in `section` is attached.
pub fn classify_section(section: &str) -> Attach {
    let (prefix, target) = match section.split_once('/') {
        Some((prefix, target)) => (prefix, target),
        None => (section, ""),
    };
    if AUTO_PREFIXES.contains(&prefix) {
        if target.is_empty() {
            return Attach::Unsupported(format!(
                "SEC(\"{section}\") names no target: write e.g. SEC(\"{prefix}/<name>\")"
            ));
        }
        return Attach::Auto;
    }
    match prefix {
        "perf_event" => Attach::PerfEvent,
        "syscall" => Attach::LoadOnly,
        _ => Attach::Unsupported(format!(
            "SEC(\"{section}\"): the host attaches tracing programs only (tracepoints, \
             tp_btf, raw_tp, fentry/fexit, kprobes, uprobes, lsm, perf_event); \
             attach this one yourself, or leave it out with programs=[...]"
        )),
    }
}

/// Whether this kernel has kprobes (CONFIG_KPROBES): they register a perf
/// event source.
fn kernel_has_kprobes() -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// Whether tracefs is mounted where libbpf looks for tracepoints.
fn tracefs_mounted() -> bool {
    std::path::Path::new("/sys/kernel/tracing/events").is_dir()
        || std::path::Path::new("/sys/kernel/debug/tracing/events").is_dir()
}

/// The likely cause of a failed attach of a program in `section`.
pub fn attach_hint(section: &str) -> &'static str {
    let prefix = section.split('/').next().unwrap_or_default();
    let kprobe = matches!(
        prefix,
        "kprobe" | "kretprobe" | "kprobe.multi" | "kretprobe.multi" | "ksyscall" | "kretsyscall"
    );
    if kprobe && !kernel_has_kprobes() {
        return "; this kernel has no kprobes (CONFIG_KPROBES is not set): use a tracepoint \
                (tp_btf/raw_tp) or fentry/fexit instead";
    }
    match prefix {
        "tp" | "tracepoint" if tracefs_mounted() => {
            "; is the tracepoint in /sys/kernel/tracing/events/<category>/<name>?"
        }
        "tp" | "tracepoint" => {
            "; classic tracepoints need tracefs (mount -t tracefs nodev /sys/kernel/tracing), \
             or use SEC(\"tp_btf/...\"), which does not"
        }
        "kprobe" | "kretprobe" | "kprobe.multi" | "kretprobe.multi" => {
            "; is the function in /proc/kallsyms (it may be inlined or renamed, e.g. .isra.0)?"
        }
        "ksyscall" | "kretsyscall" => "; is the name a system call of this architecture?",
        "fentry" | "fexit" | "fmod_ret" | "tp_btf" => {
            "; is the function or tracepoint in the kernel's BTF (bpftool btf dump file \
             /sys/kernel/btf/vmlinux | grep NAME)?"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_sections_attach_automatically() {
        for section in [
            "tp_btf/sched_switch",
            "tp/sched/sched_process_exec",
            "fentry/do_nanosleep",
            "kprobe/do_nanosleep",
            "raw_tp/sched_wakeup",
        ] {
            assert_eq!(classify_section(section), Attach::Auto, "{section}");
        }
        assert_eq!(classify_section("perf_event"), Attach::PerfEvent);
        assert_eq!(classify_section("syscall"), Attach::LoadOnly);
    }

    #[test]
    fn other_sections_say_why_they_are_not_attached() {
        let Attach::Unsupported(why) = classify_section("xdp") else {
            panic!("xdp needs an interface");
        };
        assert!(why.contains("programs=["), "{why}");
        let Attach::Unsupported(why) = classify_section("kprobe") else {
            panic!("a kprobe needs a function");
        };
        assert!(why.contains("kprobe/<name>"), "{why}");
    }

    #[test]
    fn attach_failures_point_at_the_likely_cause() {
        let tp_hint = attach_hint("tp/sched/sched_switch");
        if tracefs_mounted() {
            assert!(tp_hint.contains("/sys/kernel/tracing/events"), "{tp_hint}");
        } else {
            assert!(tp_hint.contains("mount -t tracefs"), "{tp_hint}");
        }
        let kprobe_hint = attach_hint("kprobe/do_sys_open");
        if kernel_has_kprobes() {
            assert!(kprobe_hint.contains("kallsyms"), "{kprobe_hint}");
        } else {
            assert!(kprobe_hint.contains("CONFIG_KPROBES"), "{kprobe_hint}");
        }
        assert!(attach_hint("fentry/x").contains("BTF"));
        assert_eq!(attach_hint("raw_tp/sched_switch"), "");
    }
}
