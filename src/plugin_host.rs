//! Running a plugin: a thread owns the loaded object (programs, links, perf
//! events) for as long as it runs, draining its ring buffers into batches of
//! raw records, one channel per ring, as the run-queue probe does. Maps are
//! read through duplicated descriptors, which stay valid after `stop()`.

use std::collections::HashMap;
use std::collections::HashSet;
use std::os::fd::AsFd as _;
use std::os::fd::AsRawFd as _;
use std::os::fd::IntoRawFd as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crossbeam_channel::bounded;
use crossbeam_channel::Receiver;
use crossbeam_channel::Sender;
use crossbeam_channel::TryRecvError;
use libbpf_rs::Link;
use libbpf_rs::MapCore as _;
use libbpf_rs::MapFlags;
use libbpf_rs::MapHandle;
use libbpf_rs::MapType;
use libbpf_rs::Object;
use libbpf_rs::OpenObject;
use libbpf_rs::ProgramHandle;

use crate::errors::ProbeError;
use crate::event_batch::BatchPolicy;
use crate::event_batch::Batcher;
use crate::event_batch::DrainStats;
use crate::event_batch::RawRecords;
use crate::kernel;
use crate::libbpf_log;
use crate::owner_thread::lock;
use crate::owner_thread::OwnerThread;
use crate::perf_sampling;
use crate::plugin_object::classify_section;
use crate::plugin_object::is_internal;
use crate::plugin_object::open_object;
use crate::plugin_object::Attach;
use crate::ring_reader::CountingSink;
use crate::ring_reader::RecordSink;
use crate::ring_reader::RingReader;
use crate::test_run::run_syscall_program;
use crate::unload;

const UNLOAD_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_POLL: Duration = Duration::from_millis(10);

/// Bytes written into a data section before load (a global set from Python).
#[derive(Debug, Clone)]
pub struct GlobalPatch {
    pub section: String,
    pub offset: usize,
    pub bytes: Vec<u8>,
}

/// A ring buffer of the object, and the size of its records when known.
#[derive(Debug, Clone)]
pub struct RingSpec {
    pub map: String,
    pub record_size: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub path: PathBuf,
    pub patches: Vec<GlobalPatch>,
    /// Load only these programs (all when None).
    pub programs: Option<Vec<String>>,
    pub rings: Vec<RingSpec>,
    pub policy: BatchPolicy,
    pub pending_batches: usize,
    /// Sampling frequency of `perf_event` programs.
    pub perf_hz: u64,
    /// New capacities of maps by name (bytes for ring buffers).
    pub max_entries: Vec<(String, u32)>,
}

/// One ring's stream of batches.
pub struct RingStream {
    pub batches: Receiver<RawRecords>,
    pub stats: Arc<DrainStats>,
}

/// What stays attached until the owner thread lets go. A perf event's
/// descriptor belongs to its link (libbpf closes it on detach).
struct Attachments {
    links: Vec<Link>,
}

/// A loaded, attached plugin.
pub struct PluginHost {
    maps: HashMap<String, MapHandle>,
    /// `SEC("syscall")` programs, run on demand (until stop: these duplicated
    /// descriptors would keep them loaded).
    on_demand: Mutex<HashMap<String, ProgramHandle>>,
    data_sections: Vec<(String, MapHandle)>,
    streams: HashMap<String, RingStream>,
    owner: OwnerThread,
}

/// What the owner thread hands out once the plugin runs.
struct Handles {
    maps: HashMap<String, MapHandle>,
    on_demand: HashMap<String, ProgramHandle>,
    /// The maps behind `.bss`, `.data` and `.rodata`, by libbpf's map name
    /// (which ends with the section's name).
    data_sections: Vec<(String, MapHandle)>,
}

type Ready = Result<Handles, ProbeError>;

impl PluginHost {
    /// Loads and attaches; returns once the programs run (or failed to).
    pub fn start(config: PluginConfig) -> Result<Self, ProbeError> {
        kernel::check_privileges()?;
        let mut senders = Vec::new();
        let mut streams = HashMap::new();
        for ring in &config.rings {
            let (tx, rx) = bounded(config.pending_batches);
            let stats = Arc::new(DrainStats::default());
            senders.push((ring.clone(), tx, Arc::clone(&stats)));
            streams.insert(ring.map.clone(), RingStream { batches: rx, stats });
        }
        let (ready_tx, ready_rx) = bounded::<Ready>(1);
        let (stop_tx, stop_rx) = bounded::<()>(1);
        let owner = thread::Builder::new()
            .name("nn-plugin".to_string())
            .spawn(move || own_plugin(&config, senders, &ready_tx, &stop_rx))
            .map_err(|err| ProbeError::Load(format!("starting the plugin thread: {err}")))?;
        let handles = match ready_rx.recv() {
            Ok(Ok(handles)) => handles,
            Ok(Err(err)) => {
                let _ = owner.join();
                return Err(err);
            }
            Err(_) => {
                let _ = owner.join();
                return Err(ProbeError::Load(
                    "the plugin thread ended before loading".to_string(),
                ));
            }
        };
        Ok(Self {
            maps: handles.maps,
            on_demand: Mutex::new(handles.on_demand),
            data_sections: handles.data_sections,
            streams,
            owner: OwnerThread::new(stop_tx, owner),
        })
    }

    pub fn is_running(&self) -> bool {
        self.owner.is_running()
    }

    /// Detaches and unloads; waits until the kernel has freed the programs and
    /// the last records have been shipped. Maps stay readable. Callable from
    /// any thread, also while another waits for a batch.
    pub fn stop(&self) {
        lock(&self.on_demand).clear();
        self.owner.stop();
    }

    pub fn stream(&self, map: &str) -> Option<&RingStream> {
        self.streams.get(map)
    }

    pub fn streams(&self) -> impl Iterator<Item = (&String, &RingStream)> {
        self.streams.iter()
    }

    /// Runs the `SEC("syscall")` program `name` once with `ctx`; returns its
    /// return value.
    pub fn run_program(&self, name: &str, ctx: &[u8]) -> Result<u32, ProbeError> {
        if !self.is_running() {
            return Err(ProbeError::State("the plugin has stopped".to_string()));
        }
        let on_demand = lock(&self.on_demand);
        let program = on_demand.get(name).ok_or_else(|| {
            let mut known = on_demand.keys().cloned().collect::<Vec<_>>();
            known.sort();
            ProbeError::State(format!(
                "no SEC(\"syscall\") program named {name:?} was loaded (those loaded: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        run_syscall_program(program.as_fd(), ctx)
    }

    /// The current bytes of data section `section` (".bss", ".data"...):
    /// the values the programs' globals hold now.
    pub fn read_section(&self, section: &str) -> Result<Vec<u8>, ProbeError> {
        let (_, map) = self
            .data_sections
            .iter()
            .find(|(name, _)| name.ends_with(section))
            .ok_or_else(|| ProbeError::Map(format!("the plugin has no data section {section}")))?;
        map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|err| ProbeError::Map(format!("reading section {section}: {err}")))?
            .ok_or_else(|| ProbeError::Map(format!("section {section} holds no value")))
    }

    /// Every entry of map `name`.
    pub fn read_map(&self, name: &str) -> Result<MapEntries, ProbeError> {
        let map = self.maps.get(name).ok_or_else(|| {
            let mut known = self.maps.keys().cloned().collect::<Vec<_>>();
            known.sort();
            ProbeError::Map(format!(
                "the plugin has no map named {name:?}; its maps are: {}",
                known.join(", ")
            ))
        })?;
        read_entries(map)
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A map's entries, keys and values back to back; per-CPU maps hold `cpus`
/// values per key.
#[derive(Debug, Default)]
pub struct MapEntries {
    pub keys: Vec<u8>,
    pub values: Vec<u8>,
    pub count: usize,
    pub cpus: usize,
}

fn read_entries(map: &MapHandle) -> Result<MapEntries, ProbeError> {
    let map_type = map.map_type();
    let keys: Vec<Vec<u8>> = match map_type {
        MapType::Array | MapType::PercpuArray => (0..map.max_entries())
            .map(|i| i.to_ne_bytes().to_vec())
            .collect(),
        MapType::Hash
        | MapType::LruHash
        | MapType::PercpuHash
        | MapType::LruPercpuHash
        | MapType::LpmTrie => {
            // get_next_key restarts from the first key when the current one
            // was deleted meanwhile: a busy map can list a key twice.
            let mut seen = HashSet::new();
            map.keys().filter(|key| seen.insert(key.clone())).collect()
        }
        other => {
            return Err(ProbeError::Map(format!(
                "map {:?} is a {other:?} map, which holds no readable entries{}",
                map.name(),
                if other == MapType::RingBuf {
                    ": read its records with batches()"
                } else {
                    ""
                }
            )))
        }
    };
    let failed =
        |err: libbpf_rs::Error| ProbeError::Map(format!("reading map {:?}: {err}", map.name()));
    let mut entries = MapEntries {
        cpus: 1,
        ..MapEntries::default()
    };
    for key in keys {
        if map_type.is_percpu() {
            // A key deleted since it was listed has no value: skip it.
            let Some(values) = map.lookup_percpu(&key, MapFlags::ANY).map_err(failed)? else {
                continue;
            };
            entries.cpus = values.len();
            entries.values.extend(values.iter().flatten());
        } else {
            let Some(value) = map.lookup(&key, MapFlags::ANY).map_err(failed)? else {
                continue;
            };
            entries.values.extend(value);
        }
        entries.keys.extend(key);
        entries.count += 1;
    }
    Ok(entries)
}

/// Sets autoload from `config.programs` and checks every loaded program can
/// be attached.
fn choose_programs(open: &mut OpenObject, config: &PluginConfig) -> Result<(), ProbeError> {
    let names = open
        .progs()
        .map(|p| p.name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    if let Some(wanted) = &config.programs {
        if let Some(missing) = wanted.iter().find(|w| !names.contains(w)) {
            return Err(ProbeError::Object(format!(
                "the object has no program named {missing:?}; its programs are: {}",
                names.join(", ")
            )));
        }
    }
    for mut prog in open.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let load = config.programs.as_ref().is_none_or(|w| w.contains(&name));
        prog.set_autoload(load);
        let section = prog.section().to_string_lossy().into_owned();
        if let (true, Attach::Unsupported(why)) = (load, classify_section(&section)) {
            return Err(ProbeError::Section(format!("program {name:?}: {why}")));
        }
    }
    Ok(())
}

/// Writes the globals set from Python into the data sections' initial values.
fn apply_patches(open: &mut OpenObject, patches: &[GlobalPatch]) -> Result<(), ProbeError> {
    for patch in patches {
        let mut done = false;
        for mut map in open.maps_mut() {
            let internal = is_internal(&map);
            let name = map.name().to_string_lossy().into_owned();
            if !internal || !name.ends_with(&patch.section) {
                continue;
            }
            let data = map.initial_value_mut().ok_or_else(|| {
                ProbeError::Object(format!("section {} has no initial value", patch.section))
            })?;
            let end = patch.offset + patch.bytes.len();
            let size = data.len();
            let slot = data.get_mut(patch.offset..end).ok_or_else(|| {
                ProbeError::Object(format!(
                    "bytes {}..{end} lie outside section {} ({} bytes)",
                    patch.offset, patch.section, size
                ))
            })?;
            slot.copy_from_slice(&patch.bytes);
            done = true;
            break;
        }
        if !done {
            return Err(ProbeError::Object(format!(
                "the object has no data section {}",
                patch.section
            )));
        }
    }
    Ok(())
}

/// Sets map capacities before load.
fn resize_maps(open: &mut OpenObject, sizes: &[(String, u32)]) -> Result<(), ProbeError> {
    for (name, entries) in sizes {
        let mut map = open
            .maps_mut()
            .find(|m| m.name() == name.as_str())
            .ok_or_else(|| {
                ProbeError::Object(format!("max_entries: the object has no map {name:?}"))
            })?;
        map.set_max_entries(*entries).map_err(|err| {
            ProbeError::Object(format!("sizing map {name:?} to {entries}: {err}"))
        })?;
    }
    Ok(())
}

/// Whether this kernel has kprobes (CONFIG_KPROBES): they register a perf
/// event source.
fn kernel_has_kprobes() -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

fn attach_hint(section: &str) -> &'static str {
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

fn attach_all(object: &Object, perf_hz: u64) -> Result<Attachments, ProbeError> {
    let mut attachments = Attachments { links: Vec::new() };
    for prog in object.progs_mut() {
        if !prog.autoload() {
            continue;
        }
        let name = prog.name().to_string_lossy().into_owned();
        let section = prog.section().to_string_lossy().into_owned();
        let failed = |err: libbpf_rs::Error| {
            ProbeError::Attach(format!(
                "attaching program {name:?} (SEC(\"{section}\")) failed: {err}{}",
                attach_hint(&section)
            ))
        };
        match classify_section(&section) {
            Attach::Auto => attachments.links.push(prog.attach().map_err(failed)?),
            Attach::PerfEvent => {
                for fd in perf_sampling::open_cpu_clock(perf_hz)? {
                    // On failure the OwnedFd still closes it; on success the
                    // link owns it, so it must not be closed here as well.
                    let link = prog.attach_perf_event(fd.as_raw_fd()).map_err(failed)?;
                    let _owned_by_link = fd.into_raw_fd();
                    attachments.links.push(link);
                }
            }
            Attach::LoadOnly => {}
            Attach::Unsupported(why) => {
                return Err(ProbeError::Section(format!("program {name:?}: {why}")))
            }
        }
    }
    Ok(attachments)
}

type RingSender = (RingSpec, Sender<RawRecords>, Arc<DrainStats>);

/// Opens, configures and loads the object (nothing attached yet).
fn load(config: &PluginConfig) -> Result<Object, ProbeError> {
    let mut open = open_object(&config.path)?;
    choose_programs(&mut open, config)?;
    apply_patches(&mut open, &config.patches)?;
    resize_maps(&mut open, &config.max_entries)?;
    let what = format!("plugin {}", config.path.display());
    open.load()
        .map_err(|err| libbpf_log::load_error(&err, &what))
}

/// Hands out map handles, opens the ring reader and attaches the programs.
/// On error, whatever was attached is detached again (dropped).
fn connect(
    object: &Object,
    config: &PluginConfig,
    senders: Vec<RingSender>,
) -> Result<(Attachments, Option<RingReader>, Handles), ProbeError> {
    let mut maps = HashMap::new();
    let mut data_sections = Vec::new();
    for map in object.maps() {
        if !map.autocreate() {
            continue;
        }
        let internal = is_internal(&map);
        let handle = MapHandle::try_from(&map)
            .map_err(|err| ProbeError::Map(format!("duplicating a map handle: {err}")))?;
        let name = map.name().to_string_lossy().into_owned();
        if internal {
            data_sections.push((name, handle));
        } else {
            maps.insert(name, handle);
        }
    }
    let mut rings: Vec<(&MapHandle, Box<dyn RecordSink>)> = Vec::new();
    let mut first_stats = None;
    for (spec, sender, stats) in senders {
        let Some(map) = maps.get(&spec.map) else {
            return Err(ProbeError::Map(format!(
                "the plugin has no ring buffer named {:?}",
                spec.map
            )));
        };
        first_stats.get_or_insert_with(|| Arc::clone(&stats));
        let sink: Box<dyn RecordSink> = match spec.record_size {
            Some(size) => Box::new(Batcher::new(
                config.policy,
                &RawRecords::new(size),
                sender,
                stats,
            )),
            None => Box::new(CountingSink(stats)),
        };
        rings.push((map, sink));
    }
    let reader = match first_stats {
        Some(stats) => {
            let rings = rings
                .into_iter()
                .map(|(map, sink)| (map as &dyn libbpf_rs::MapCore, sink))
                .collect();
            Some(RingReader::open(
                rings,
                stats,
                MAX_POLL.min(config.policy.max_age),
            )?)
        }
        None => None,
    };
    let attachments = attach_all(object, config.perf_hz)?;
    let mut on_demand = HashMap::new();
    for prog in object.progs_mut() {
        let section = prog.section().to_string_lossy().into_owned();
        if prog.autoload() && classify_section(&section) == Attach::LoadOnly {
            let handle = ProgramHandle::try_from(&prog)
                .map_err(|err| ProbeError::Map(format!("duplicating a program handle: {err}")))?;
            on_demand.insert(prog.name().to_string_lossy().into_owned(), handle);
        }
    }
    let handles = Handles {
        maps,
        on_demand,
        data_sections,
    };
    Ok((attachments, reader, handles))
}

fn own_plugin(
    config: &PluginConfig,
    senders: Vec<RingSender>,
    ready: &Sender<Ready>,
    stop: &Receiver<()>,
) {
    let object = match load(config) {
        Ok(object) => object,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let program_ids = unload::loaded_program_ids(&object);
    let (attachments, reader, handles) = match connect(&object, config, senders) {
        Ok(parts) => parts,
        Err(err) => {
            // Some programs may have attached before the failure: they are
            // detached already; unload and wait, so none outlives the error.
            drop(object);
            unload::wait_until_unloaded(&program_ids, UNLOAD_TIMEOUT);
            let _ = ready.send(Err(err));
            return;
        }
    };
    if ready.send(Ok(handles)).is_err() {
        return;
    }
    match reader {
        Some(reader) => {
            while matches!(stop.try_recv(), Err(TryRecvError::Empty)) {
                reader.drain_once();
            }
            // Detach first, so that nothing arrives after the last drain.
            drop(attachments);
            reader.drain_rest();
        }
        None => {
            let _ = stop.recv();
            drop(attachments);
        }
    }
    drop(object);
    unload::wait_until_unloaded(&program_ids, UNLOAD_TIMEOUT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_failures_point_at_the_likely_cause() {
        assert!(attach_hint("tp/sched/sched_switch").contains("tracefs"));
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
