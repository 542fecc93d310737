//! The run-queue latency probe: its configuration, the thread that owns the
//! loaded BPF object for as long as the probe runs, and reading its maps.
//!
//! The owner thread holds the skeleton (and so the programs and links); the
//! probe itself keeps only duplicated map file descriptors, which are `Send`
//! and stay readable after the programs are detached.

use std::mem::MaybeUninit;
use std::thread;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::bounded;
use crossbeam_channel::Receiver;
use crossbeam_channel::Sender;
use libbpf_rs::skel::OpenSkel as _;
use libbpf_rs::skel::Skel as _;
use libbpf_rs::skel::SkelBuilder as _;
use libbpf_rs::Btf;
use libbpf_rs::ErrorKind;
use libbpf_rs::MapCore as _;
use libbpf_rs::MapFlags;
use libbpf_rs::MapHandle;

use crate::errors::ProbeError;
use crate::kernel;
use crate::libbpf_log;
use crate::runq_skel::types::runq_counters;
use crate::runq_skel::types::runq_hist;
use crate::runq_skel::RunqSkelBuilder;
use crate::unload;

/// How long stop() waits for the kernel to free the programs (it takes tens of
/// milliseconds; the bound only keeps a wedged kernel from hanging Python).
const UNLOAD_TIMEOUT: Duration = Duration::from_secs(2);

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

    fn resolve(self, btf: &Btf<'_>) -> Result<Self, ProbeError> {
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

/// What to load.
#[derive(Debug, Clone)]
pub struct RunqConfig {
    pub method: Method,
    /// Only record waits of tasks in these cgroup ids (`None`: every cgroup).
    pub cgroup_filter: Option<Vec<u64>>,
    /// Capacity of the per-cgroup histogram map; waits of cgroups beyond it are
    /// counted in `failed_updates`.
    pub max_cgroups: u32,
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

/// Kernel-side counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub switches: u64,
    pub waits: u64,
    pub filtered: u64,
    pub failed_updates: u64,
    pub failed_task_storage: u64,
}

impl Counters {
    fn add(&mut self, cpu: &runq_counters) {
        self.switches += cpu.switches;
        self.waits += cpu.waits;
        self.filtered += cpu.filtered;
        self.failed_updates += cpu.failed_updates;
        self.failed_task_storage += cpu.failed_task_storage;
    }

    /// Name and value of each counter, for Python's `stats()`.
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [
            ("switches", self.switches),
            ("waits", self.waits),
            ("filtered", self.filtered),
            ("failed_updates", self.failed_updates),
            ("failed_task_storage", self.failed_task_storage),
        ]
    }
}

/// Map handles the owner thread hands out once the probe is attached.
struct MapHandles {
    hists: MapHandle,
    counters: MapHandle,
}

/// A loaded and attached run-queue probe.
pub struct RunqProbe {
    method: Method,
    maps: MapHandles,
    stop: Option<Sender<()>>,
    owner: Option<JoinHandle<()>>,
}

impl RunqProbe {
    /// Checks the kernel and privileges, then loads and attaches the probe on a
    /// thread of its own. Returns once the programs are attached.
    pub fn start(config: RunqConfig) -> Result<Self, ProbeError> {
        kernel::check_privileges()?;
        let btf = kernel::vmlinux_btf()?;
        kernel::check_kfuncs(&btf)?;
        let method = config.method.resolve(&btf)?;

        let (ready_tx, ready_rx) = bounded(1);
        let (stop_tx, stop_rx) = bounded::<()>(1);
        let owner = thread::Builder::new()
            .name("nn-runq".to_string())
            .spawn(move || own_probe(&config, method, &ready_tx, &stop_rx))
            .map_err(|err| ProbeError::Load(format!("cannot start the probe thread: {err}")))?;
        let ready = ready_rx.recv();
        match ready {
            Ok(Ok(maps)) => Ok(Self {
                method,
                maps,
                stop: Some(stop_tx),
                owner: Some(owner),
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
        self.owner.is_some()
    }

    /// Detaches and unloads the programs; the maps stay readable.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(owner) = self.owner.take() {
            let _ = owner.join();
        }
    }

    /// Every cgroup's histogram so far (cumulative since start).
    pub fn histograms(&self) -> Result<Vec<CgroupHist>, ProbeError> {
        let map = &self.maps.hists;
        let mut hists = Vec::new();
        for key in map.keys() {
            let Some(value) = map
                .lookup(&key, MapFlags::ANY)
                .map_err(|err| ProbeError::Map(format!("reading runq_hists: {err}")))?
            else {
                continue; // removed between listing and lookup
            };
            let (Ok(id_bytes), Some(hist)) = (
                <[u8; 8]>::try_from(key.as_slice()),
                decode_pod::<runq_hist>(&value),
            ) else {
                return Err(ProbeError::Map(
                    "runq_hists holds an entry of unexpected size".to_string(),
                ));
            };
            hists.push(CgroupHist {
                cgroup_id: u64::from_ne_bytes(id_bytes),
                slots: hist.slots.to_vec(),
                count: hist.count,
                total_ns: hist.total_ns,
                max_ns: hist.max_ns,
                comm: c_chars_to_string(&hist.comm),
                cgroup_name: c_chars_to_string(&hist.cgroup_name),
            });
        }
        Ok(hists)
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
        self.stop();
    }
}

/// Body of the owner thread: load, attach, report, then hold the skeleton until
/// told to stop (or until the probe is dropped, which closes the channel).
fn own_probe(
    config: &RunqConfig,
    method: Method,
    ready: &Sender<Result<MapHandles, ProbeError>>,
    stop: &Receiver<()>,
) {
    let mut storage = MaybeUninit::uninit();
    let attached = load_and_attach(config, method, &mut storage);
    let skel = match attached {
        Ok(skel) => skel,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let handles = (|| {
        Ok(MapHandles {
            hists: MapHandle::try_from(&skel.maps.runq_hists)?,
            counters: MapHandle::try_from(&skel.maps.counters)?,
        })
    })()
    .map_err(|err: libbpf_rs::Error| ProbeError::Map(format!("duplicating map handles: {err}")));
    let failed = handles.is_err();
    if ready.send(handles).is_err() || failed {
        return;
    }
    let program_ids = unload::loaded_program_ids(skel.object());
    let _ = stop.recv();
    // Dropping the skeleton destroys the links and unloads the programs; the
    // kernel frees them after a grace period, which stop() waits out.
    drop(skel);
    unload::wait_until_unloaded(&program_ids, UNLOAD_TIMEOUT);
}

fn load_and_attach<'obj>(
    config: &RunqConfig,
    method: Method,
    storage: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
) -> Result<crate::runq_skel::RunqSkel<'obj>, ProbeError> {
    libbpf_log::start_capture();
    let mut open = RunqSkelBuilder::default()
        .open(storage)
        .map_err(|err| ProbeError::Load(format!("opening the runq probe: {err}")))?;

    let sched_info = method == Method::SchedInfo;
    let percpu_rq = sched_info && kernel::kallsyms_has("runqueues");
    open.progs
        .nn_switch_si
        .set_autoload(sched_info && !percpu_rq);
    open.progs.nn_switch_si_pc.set_autoload(percpu_rq);
    open.progs.nn_switch_wk.set_autoload(!sched_info);
    open.progs.nn_wakeup.set_autoload(!sched_info);
    open.progs.nn_wakeup_new.set_autoload(!sched_info);
    open.maps
        .runq_hists
        .set_max_entries(config.max_cgroups)
        .map_err(|err| ProbeError::Load(format!("sizing runq_hists: {err}")))?;
    if let Some(filter) = &config.cgroup_filter {
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| ProbeError::Load("the probe has no rodata".to_string()))?;
        rodata.filter_cgroups = true;
        let capacity = u32::try_from(filter.len().max(1)).unwrap_or(u32::MAX);
        open.maps
            .cgroup_filter
            .set_max_entries(capacity)
            .map_err(|err| ProbeError::Load(format!("sizing cgroup_filter: {err}")))?;
    }

    let mut skel = open.load().map_err(|err| load_error(&err))?;
    for cgroup_id in config.cgroup_filter.iter().flatten() {
        skel.maps
            .cgroup_filter
            .update(&cgroup_id.to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(|err| ProbeError::Map(format!("filling cgroup_filter: {err}")))?;
    }
    skel.attach().map_err(|err| {
        ProbeError::Attach(format!(
            "attaching the runq probe to sched tracepoints failed: {err}; \
             the kernel needs tp_btf support (Linux >= 5.5 with BTF)"
        ))
    })?;
    Ok(skel)
}

fn load_error(err: &libbpf_rs::Error) -> ProbeError {
    if err.kind() == ErrorKind::PermissionDenied {
        return ProbeError::Privilege(format!(
            "the kernel refused to load the probe ({err}): run as root or with \
             CAP_BPF+CAP_PERFMON, and check kernel lockdown (/sys/kernel/security/lockdown)"
        ));
    }
    ProbeError::Load(format!(
        "the kernel rejected the runq probe: {err}\n--- libbpf/verifier log (tail) ---\n{}",
        libbpf_log::tail(30)
    ))
}

/// Plain-old-data wire types: repr(C), made only of integers and integer
/// arrays, so that every bit pattern is a valid value.
trait Pod: Copy {}
impl Pod for runq_hist {}
impl Pod for runq_counters {}

/// Decodes a map value into the skeleton's generated type.
fn decode_pod<T: Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: the buffer holds at least size_of::<T>() bytes, read_unaligned has
    // no alignment requirement, and T: Pod accepts any bit pattern.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
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
