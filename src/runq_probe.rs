//! The run-queue latency probe: its configuration, the thread that owns the
//! loaded BPF object for as long as the probe runs, and reading its maps.
//!
//! The owner thread holds the skeleton (and so the programs and links); the
//! probe itself keeps only duplicated map file descriptors, which are `Send`
//! and stay readable after the programs are detached.

use std::os::fd::AsFd as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::thread;

use crossbeam_channel::bounded;
use crossbeam_channel::Receiver;
use libbpf_rs::Btf;
use libbpf_rs::MapCore as _;
use libbpf_rs::MapFlags;
use libbpf_rs::MapHandle;
use libbpf_rs::ProgramHandle;

use crate::drain::own_probe;
use crate::drain::AttributionMaps;
use crate::drain::MapHandles;
use crate::drain::StreamSink;
use crate::errors::ProbeError;
use crate::event_batch::BatchPolicy;
use crate::event_batch::DrainStats;
use crate::event_batch::EventColumns;
use crate::kernel;
use crate::owner_thread::lock;
use crate::owner_thread::OwnerThread;
use crate::pod::decode_pod;
use crate::pod::Pod;
use crate::runq_skel::types::runq_blame;
use crate::runq_skel::types::runq_blame_key;
use crate::runq_skel::types::runq_counters;
use crate::runq_skel::types::runq_hist;
use crate::runq_skel::types::runq_switch_outs;
use crate::runq_skel::types::runq_synthetic_args;
use crate::test_run::run_syscall_program;

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
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(Self::Auto),
            "sched_info" => Some(Self::SchedInfo),
            "wakeup" => Some(Self::Wakeup),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::SchedInfo => "sched_info",
            Self::Wakeup => "wakeup",
        }
    }

    pub fn resolve(self, btf: &Btf<'_>) -> Result<Self, ProbeError> {
        let sched_info = kernel::sched_info_supported(btf);
        match self {
            Self::Auto if sched_info => Ok(Self::SchedInfo),
            Self::Auto => Ok(Self::Wakeup),
            Self::SchedInfo if !sched_info => Err(ProbeError::KernelTooOld(
                "this kernel keeps no sched_info (CONFIG_SCHED_INFO, set by SCHEDSTATS or \
                 TASK_DELAY_ACCT): use method=\"wakeup\" or \"auto\""
                    .to_string(),
            )),
            method => Ok(method),
        }
    }
}

/// How to stream events (see `RunqProbe(stream=True)`).
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Size of the events ring buffer: a power of two, at least a page.
    pub ring_buffer_bytes: u32,
    /// When a batch is shipped.
    pub policy: BatchPolicy,
    /// At most one event per cgroup per CPU per this many ns (0: no limit).
    pub rate_limit_ns: u64,
    /// Batches waiting for Python before new ones are dropped (and counted).
    pub pending_batches: usize,
    /// Also load the benchmark-only synthetic event source (see
    /// `RunqProbe::synthetic_burst`).
    pub synthetic: bool,
}

/// What to load.
#[derive(Debug, Clone)]
pub struct RunqConfig {
    pub method: Method,
    /// Only record waits of tasks in these cgroup ids (`None`: every cgroup).
    pub cgroup_filter: Option<Vec<u64>>,
    /// Capacity of the per-cgroup histogram map; waits of cgroups beyond it are
    /// counted in `failed_updates`.
    pub max_cgroups: u32,
    /// Stream one event per wait, besides the histograms.
    pub stream: Option<StreamConfig>,
    /// Split waits by the cgroup that had the CPU; count switch-outs by cause.
    pub attribution: bool,
    /// Cgroup id of /system.slice (0: none), whose subtree counts as "system".
    pub system_slice_id: u64,
}

/// One cgroup's histogram as the kernel aggregated it.
#[derive(Debug, Clone)]
pub struct CgroupHist {
    pub cgroup_id: u64,
    pub slots: Vec<u64>,
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub comm: String,
    pub cgroup_name: String,
}

/// Waits of one cgroup that ended with the CPU coming from another (or the
/// same) cgroup; `culprit_cgroup_id` 0 means the CPU was idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blame {
    pub cgroup_id: u64,
    pub culprit_cgroup_id: u64,
    pub count: u64,
    pub total_ns: u64,
}

/// Why tasks of one cgroup left the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchOuts {
    pub cgroup_id: u64,
    pub voluntary: u64,
    pub preempted_same: u64,
    pub preempted_other: u64,
    pub preempted_system: u64,
}

/// Kernel-side counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub switches: u64,
    pub waits: u64,
    pub filtered: u64,
    pub failed_updates: u64,
    pub failed_task_storage: u64,
    pub events: u64,
    pub dropped_ringbuf: u64,
    pub rate_limited: u64,
    pub failed_attribution: u64,
}

impl Counters {
    fn add(&mut self, cpu: &runq_counters) {
        self.switches += cpu.switches;
        self.waits += cpu.waits;
        self.filtered += cpu.filtered;
        self.failed_updates += cpu.failed_updates;
        self.failed_task_storage += cpu.failed_task_storage;
        self.events += cpu.events;
        self.dropped_ringbuf += cpu.dropped_ringbuf;
        self.rate_limited += cpu.rate_limited;
        self.failed_attribution += cpu.failed_attribution;
    }

    /// Name and value of each counter, for Python's `stats()`.
    pub fn named(&self) -> [(&'static str, u64); 9] {
        [
            ("switches", self.switches),
            ("waits", self.waits),
            ("filtered", self.filtered),
            ("failed_updates", self.failed_updates),
            ("failed_task_storage", self.failed_task_storage),
            ("events", self.events),
            ("dropped_ringbuf", self.dropped_ringbuf),
            ("rate_limited", self.rate_limited),
            ("failed_attribution", self.failed_attribution),
        ]
    }
}

/// A loaded and attached run-queue probe.
pub struct RunqProbe {
    method: Method,
    maps: MapHandles,
    /// The benchmark-only synthetic source, until stop (its duplicated
    /// descriptor would keep it loaded).
    synthetic: Mutex<Option<ProgramHandle>>,
    owner: OwnerThread,
    batches: Option<Receiver<EventColumns>>,
    drain_stats: Arc<DrainStats>,
}

impl RunqProbe {
    /// Checks the kernel and privileges, then loads and attaches the probe on a
    /// thread of its own. Returns once the programs are attached.
    pub fn start(config: RunqConfig) -> Result<Self, ProbeError> {
        kernel::check_privileges()?;
        let btf = kernel::vmlinux_btf()?;
        kernel::check_kfuncs(&btf)?;
        let method = config.method.resolve(&btf)?;

        let drain_stats = Arc::new(DrainStats::default());
        let (sink, batches) = match &config.stream {
            Some(stream) => {
                let (sender, receiver) = bounded(stream.pending_batches);
                let sink = StreamSink {
                    sender,
                    stats: Arc::clone(&drain_stats),
                };
                (Some(sink), Some(receiver))
            }
            None => (None, None),
        };
        let (ready_tx, ready_rx) = bounded(1);
        let (stop_tx, stop_rx) = bounded::<()>(1);
        let owner = thread::Builder::new()
            .name("nn-runq".to_string())
            .spawn(move || own_probe(&config, method, sink, &ready_tx, &stop_rx))
            .map_err(|err| ProbeError::Load(format!("cannot start the probe thread: {err}")))?;
        let ready = ready_rx.recv();
        match ready {
            Ok(Ok(mut maps)) => Ok(Self {
                method,
                synthetic: Mutex::new(maps.synthetic.take()),
                maps,
                owner: OwnerThread::new(stop_tx, owner),
                batches,
                drain_stats,
            }),
            Ok(Err(err)) => {
                let _ = owner.join();
                Err(err)
            }
            Err(_) => {
                let _ = owner.join();
                Err(ProbeError::Load(
                    "the probe thread ended before attaching".to_string(),
                ))
            }
        }
    }

    pub fn method(&self) -> Method {
        self.method
    }

    pub fn is_running(&self) -> bool {
        self.owner.is_running()
    }

    /// The stream of event batches, if the probe streams. Disconnected (once
    /// empty) after the probe stops.
    pub fn batches(&self) -> Option<&Receiver<EventColumns>> {
        self.batches.as_ref()
    }

    /// What happened to streamed records in user space.
    pub fn drain_stats(&self) -> &DrainStats {
        &self.drain_stats
    }

    /// Benchmark only: has the kernel write `count` synthetic events (cgroup id
    /// 0) into the events ring buffer at once, as fast as it can.
    pub fn synthetic_burst(&self, count: u64) -> Result<(), ProbeError> {
        if !self.is_running() {
            return Err(ProbeError::State("the probe has stopped".to_string()));
        }
        let synthetic = lock(&self.synthetic);
        let program = synthetic.as_ref().ok_or_else(|| {
            ProbeError::State("the probe was started without the synthetic source".to_string())
        })?;
        let args = runq_synthetic_args { count };
        // SAFETY: runq_synthetic_args is plain old data; viewing it as bytes is sound.
        let ctx = unsafe {
            std::slice::from_raw_parts(
                (&raw const args).cast::<u8>(),
                size_of::<runq_synthetic_args>(),
            )
        };
        run_syscall_program(program.as_fd(), ctx)?;
        Ok(())
    }

    /// Detaches and unloads the programs; the maps stay readable.
    /// Callable from any thread, also while another waits for a batch.
    pub fn stop(&self) {
        lock(&self.synthetic).take();
        self.owner.stop();
    }

    /// Every cgroup's histogram so far (cumulative since start).
    pub fn histograms(&self) -> Result<Vec<CgroupHist>, ProbeError> {
        read_hash::<u64, runq_hist, _>(&self.maps.hists, |cgroup_id, hist| CgroupHist {
            cgroup_id,
            slots: hist.slots.to_vec(),
            count: hist.count,
            total_ns: hist.total_ns,
            max_ns: hist.max_ns,
            comm: c_chars_to_string(&hist.comm),
            cgroup_name: c_chars_to_string(&hist.cgroup_name),
        })
    }

    /// Every (waiting cgroup, culprit cgroup) pair so far.
    pub fn blame(&self) -> Result<Vec<Blame>, ProbeError> {
        read_hash::<runq_blame_key, runq_blame, _>(self.attribution_map(|m| &m.blame)?, |k, v| {
            Blame {
                cgroup_id: k.cgroup_id,
                culprit_cgroup_id: k.culprit_cgroup_id,
                count: v.count,
                total_ns: v.total_ns,
            }
        })
    }

    /// Switch-outs by cause, per cgroup, so far.
    pub fn switch_outs(&self) -> Result<Vec<SwitchOuts>, ProbeError> {
        read_hash::<u64, runq_switch_outs, _>(self.attribution_map(|m| &m.switch_outs)?, |k, v| {
            SwitchOuts {
                cgroup_id: k,
                voluntary: v.voluntary,
                preempted_same: v.preempted_same,
                preempted_other: v.preempted_other,
                preempted_system: v.preempted_system,
            }
        })
    }

    fn attribution_map(
        &self,
        pick: impl Fn(&AttributionMaps) -> &MapHandle,
    ) -> Result<&MapHandle, ProbeError> {
        self.maps.attribution.as_ref().map(pick).ok_or_else(|| {
            ProbeError::State(
                "this probe does not attribute waits: create it with attribution=True".to_string(),
            )
        })
    }

    /// Per-CPU counters summed over CPUs.
    pub fn counters(&self) -> Result<Counters, ProbeError> {
        let per_cpu = self
            .maps
            .counters
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|err| ProbeError::Map(format!("reading counters: {err}")))?
            .unwrap_or_default();
        let mut total = Counters::default();
        for bytes in &per_cpu {
            let cpu = decode_pod::<runq_counters>(bytes).ok_or_else(|| {
                ProbeError::Map("counters holds a value of unexpected size".to_string())
            })?;
            total.add(&cpu);
        }
        Ok(total)
    }
}

impl Drop for RunqProbe {
    fn drop(&mut self) {
        // The owner thread stops on its own drop; the synthetic handle first.
        lock(&self.synthetic).take();
    }
}

/// Reads every entry of a hash map with plain-old-data keys and values.
fn read_hash<K: Pod, V: Pod, T>(
    map: &MapHandle,
    convert: impl Fn(K, V) -> T,
) -> Result<Vec<T>, ProbeError> {
    let mut entries = Vec::new();
    for key in map.keys() {
        let Some(value) = map
            .lookup(&key, MapFlags::ANY)
            .map_err(|err| ProbeError::Map(format!("reading a map: {err}")))?
        else {
            continue; // removed between listing and lookup
        };
        match (decode_pod::<K>(&key), decode_pod::<V>(&value)) {
            (Some(k), Some(v)) => entries.push(convert(k, v)),
            _ => {
                return Err(ProbeError::Map(
                    "a map entry has an unexpected size".to_string(),
                ))
            }
        }
    }
    Ok(entries)
}

/// A NUL-terminated C char array as a Rust string (lossy for non-UTF-8 names).
fn c_chars_to_string(chars: &[i8]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .map(|&c| c.to_ne_bytes()[0])
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip() {
        for method in [Method::Auto, Method::SchedInfo, Method::Wakeup] {
            assert_eq!(Method::parse(method.name()), Some(method));
        }
        assert_eq!(Method::parse("kprobe"), None);
    }

    #[test]
    fn c_strings_stop_at_nul() {
        let mut chars = [0i8; 16];
        for (slot, byte) in chars.iter_mut().zip(b"kubelet") {
            *slot = *byte as i8;
        }
        assert_eq!(c_chars_to_string(&chars), "kubelet");
        assert_eq!(c_chars_to_string(&[0i8; 4]), "");
    }

    #[test]
    fn decodes_a_histogram_value() {
        let mut hist = runq_hist::default();
        hist.slots[10] = 3;
        hist.count = 3;
        hist.total_ns = 3000;
        hist.max_ns = 1500;
        // SAFETY: runq_hist is plain old data; viewing it as bytes is sound.
        let bytes = unsafe {
            std::slice::from_raw_parts((&raw const hist).cast::<u8>(), size_of::<runq_hist>())
        };
        let decoded = decode_pod::<runq_hist>(bytes).expect("full-size buffer decodes");
        assert_eq!(decoded.slots[10], 3);
        assert_eq!(
            (decoded.count, decoded.total_ns, decoded.max_ns),
            (3, 3000, 1500)
        );
        assert!(decode_pod::<runq_hist>(&bytes[..10]).is_none());
    }
}
