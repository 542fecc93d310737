//! Which perf event drives a `perf_event` program: a software or hardware
//! event named as bpftrace and `perf list` name it, sampled at a frequency or
//! once every `period` events, on every online CPU or on the first only.
//! bpftrace's probes map onto it: `profile:hz:N` is cpu-clock at frequency N
//! on every CPU, `interval:ms:N` cpu-clock with a period of N ms in ns on the
//! first CPU (an interval fires once, not once per CPU), `software:cs:1` a
//! period of one context switch on every CPU.

use libbpf_rs::libbpf_sys;

use crate::errors::HostError;

/// Where the event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Counted by the kernel itself (clocks, faults, switches): always there.
    Software,
    /// Counted by the CPU's PMU: absent in many VMs.
    Hardware,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Software => "software",
            Self::Hardware => "hardware",
        }
    }

    /// perf_event_attr.type
    pub fn perf_type(self) -> u32 {
        match self {
            Self::Software => libbpf_sys::PERF_TYPE_SOFTWARE,
            Self::Hardware => libbpf_sys::PERF_TYPE_HARDWARE,
        }
    }

    fn events(self) -> &'static [EventName] {
        match self {
            Self::Software => SOFTWARE_EVENTS,
            Self::Hardware => HARDWARE_EVENTS,
        }
    }
}

/// When the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// About this many times a second (the kernel adjusts the period; for
    /// the clocks it is fixed at 1e9 / hz ns).
    Frequency(u64),
    /// Once every this many events (nanoseconds for the clocks).
    Period(u64),
}

/// Which CPUs get an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuScope {
    /// Every online CPU: the program samples what each CPU does.
    All,
    /// The first online CPU only: a timer that fires once per period, as
    /// bpftrace's `interval` probes do.
    First,
}

impl CpuScope {
    pub fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::First => "first",
        }
    }
}

/// One perf event per CPU in scope, each running the program on overflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfEventSpec {
    pub kind: EventKind,
    /// The canonical name (`context-switches` for `cs`).
    pub event: &'static str,
    /// perf_event_attr.config
    pub config: u64,
    pub sampling: Sampling,
    pub cpus: CpuScope,
}

/// An event's canonical name, bpftrace's alias and its perf config.
struct EventName {
    name: &'static str,
    alias: Option<&'static str>,
    config: u32,
}

const fn event(name: &'static str, alias: Option<&'static str>, config: u32) -> EventName {
    EventName {
        name,
        alias,
        config,
    }
}

const SOFTWARE_EVENTS: &[EventName] = &[
    event(
        "cpu-clock",
        Some("cpu"),
        libbpf_sys::PERF_COUNT_SW_CPU_CLOCK,
    ),
    event("task-clock", None, libbpf_sys::PERF_COUNT_SW_TASK_CLOCK),
    event(
        "page-faults",
        Some("faults"),
        libbpf_sys::PERF_COUNT_SW_PAGE_FAULTS,
    ),
    event(
        "context-switches",
        Some("cs"),
        libbpf_sys::PERF_COUNT_SW_CONTEXT_SWITCHES,
    ),
    event(
        "cpu-migrations",
        Some("migrations"),
        libbpf_sys::PERF_COUNT_SW_CPU_MIGRATIONS,
    ),
    event(
        "minor-faults",
        Some("minflt"),
        libbpf_sys::PERF_COUNT_SW_PAGE_FAULTS_MIN,
    ),
    event(
        "major-faults",
        Some("majflt"),
        libbpf_sys::PERF_COUNT_SW_PAGE_FAULTS_MAJ,
    ),
    event(
        "alignment-faults",
        None,
        libbpf_sys::PERF_COUNT_SW_ALIGNMENT_FAULTS,
    ),
    event(
        "emulation-faults",
        None,
        libbpf_sys::PERF_COUNT_SW_EMULATION_FAULTS,
    ),
    event("dummy", None, libbpf_sys::PERF_COUNT_SW_DUMMY),
    event("bpf-output", None, libbpf_sys::PERF_COUNT_SW_BPF_OUTPUT),
];

const HARDWARE_EVENTS: &[EventName] = &[
    event(
        "cpu-cycles",
        Some("cycles"),
        libbpf_sys::PERF_COUNT_HW_CPU_CYCLES,
    ),
    event("instructions", None, libbpf_sys::PERF_COUNT_HW_INSTRUCTIONS),
    event(
        "cache-references",
        None,
        libbpf_sys::PERF_COUNT_HW_CACHE_REFERENCES,
    ),
    event("cache-misses", None, libbpf_sys::PERF_COUNT_HW_CACHE_MISSES),
    event(
        "branch-instructions",
        Some("branches"),
        libbpf_sys::PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
    ),
    event(
        "branch-misses",
        None,
        libbpf_sys::PERF_COUNT_HW_BRANCH_MISSES,
    ),
    event("bus-cycles", None, libbpf_sys::PERF_COUNT_HW_BUS_CYCLES),
    event(
        "frontend-stalls",
        None,
        libbpf_sys::PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
    ),
    event(
        "backend-stalls",
        None,
        libbpf_sys::PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
    ),
    event("ref-cycles", None, libbpf_sys::PERF_COUNT_HW_REF_CPU_CYCLES),
];

impl PerfEventSpec {
    /// What a `perf_event` program gets when no event is named for it: a
    /// CPU-clock sample on every CPU at `hz`, like `profile:hz:N`.
    pub fn cpu_clock_hz(hz: u64) -> Self {
        Self {
            kind: EventKind::Software,
            event: SOFTWARE_EVENTS[0].name,
            config: u64::from(libbpf_sys::PERF_COUNT_SW_CPU_CLOCK),
            sampling: Sampling::Frequency(hz),
            cpus: CpuScope::All,
        }
    }

    /// Checks a spec given by names; the errors say what would be accepted.
    pub fn parse(
        kind: &str,
        event: &str,
        frequency: Option<i64>,
        period: Option<i64>,
        cpus: &str,
    ) -> Result<Self, HostError> {
        let kind = match kind {
            "software" => EventKind::Software,
            "hardware" => EventKind::Hardware,
            other => {
                return Err(HostError::Argument(format!(
                    "perf event type {other:?} is not one of 'software', 'hardware'"
                )))
            }
        };
        let named = kind
            .events()
            .iter()
            .find(|e| e.name == event || e.alias == Some(event))
            .ok_or_else(|| {
                HostError::Argument(format!(
                    "{event:?} is not a {} perf event; those known: {}",
                    kind.name(),
                    event_names(kind)
                ))
            })?;
        let positive = |what: &str, value: i64| {
            u64::try_from(value).ok().filter(|&v| v > 0).ok_or_else(|| {
                HostError::Argument(format!(
                    "perf event {}: {what} must be at least 1, got {value}",
                    named.name
                ))
            })
        };
        let sampling = match (frequency, period) {
            (Some(hz), None) => Sampling::Frequency(positive("frequency", hz)?),
            (None, Some(events)) => Sampling::Period(positive("period", events)?),
            (Some(_), Some(_)) | (None, None) => {
                return Err(HostError::Argument(format!(
                    "perf event {}: give exactly one of frequency (samples a second) and \
                     period (events between samples, ns for the clocks)",
                    named.name
                )))
            }
        };
        let cpus = match cpus {
            "all" => CpuScope::All,
            "first" => CpuScope::First,
            other => {
                return Err(HostError::Argument(format!(
                    "perf event {}: cpus {other:?} is not one of 'all' (an event on every \
                     online CPU) and 'first' (the first online CPU only)",
                    named.name
                )))
            }
        };
        Ok(Self {
            kind,
            event: named.name,
            config: u64::from(named.config),
            sampling,
            cpus,
        })
    }

    /// How messages name it: `software:context-switches`.
    pub fn describe(&self) -> String {
        format!("{}:{}", self.kind.name(), self.event)
    }
}

/// The names of one kind's events, aliases in parentheses.
fn event_names(kind: EventKind) -> String {
    kind.events()
        .iter()
        .map(|e| match e.alias {
            Some(alias) => format!("{} ({alias})", e.name),
            None => e.name.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_give_the_perf_config() {
        let cs = PerfEventSpec::parse("software", "cs", None, Some(1), "all").unwrap();
        assert_eq!(cs.event, "context-switches");
        assert_eq!(
            cs.config,
            u64::from(libbpf_sys::PERF_COUNT_SW_CONTEXT_SWITCHES)
        );
        assert_eq!(cs.sampling, Sampling::Period(1));
        let cycles = PerfEventSpec::parse("hardware", "cycles", Some(99), None, "first").unwrap();
        assert_eq!(cycles.kind.perf_type(), libbpf_sys::PERF_TYPE_HARDWARE);
        assert_eq!(cycles.event, "cpu-cycles");
        assert_eq!(cycles.cpus, CpuScope::First);
        assert_eq!(cycles.describe(), "hardware:cpu-cycles");
    }

    #[test]
    fn bad_specs_say_what_would_be_accepted() {
        let unknown = PerfEventSpec::parse("software", "cycles", Some(1), None, "all");
        let Err(HostError::Argument(why)) = unknown else {
            panic!("cycles is a hardware event");
        };
        assert!(why.contains("context-switches (cs)"), "{why}");
        for (frequency, period) in [(Some(1), Some(1)), (None, None)] {
            let Err(HostError::Argument(why)) =
                PerfEventSpec::parse("software", "cpu-clock", frequency, period, "all")
            else {
                panic!("exactly one of frequency and period");
            };
            assert!(why.contains("exactly one of frequency"), "{why}");
        }
        assert!(PerfEventSpec::parse("software", "cpu", Some(0), None, "all").is_err());
        assert!(PerfEventSpec::parse("software", "cpu", None, Some(-5), "all").is_err());
        assert!(PerfEventSpec::parse("software", "cpu", Some(1), None, "some").is_err());
        assert!(PerfEventSpec::parse("tracepoint", "cpu", Some(1), None, "all").is_err());
    }
}
